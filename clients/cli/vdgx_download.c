/*  vdgx_download.c - model download from a Hugging Face compatible hub (see the header).

    Files are written to PATH.part and renamed only once verified, so an interrupted download
    never leaves a truncated file under its final name, and the next run resumes the .part
    with a Range request instead of starting over.
*/
#include "vdgx_download.h"
#include "vdgx_sha256.h"

#include <czmq.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_ENDPOINT    "https://huggingface.co"
#define TREE_MAX_BYTES      (16u << 20)     //  a tree listing larger than this is refused
#define MAX_FILES           4096

//  --------------------------------------------------------------------------
//  The known models (official layouts and the diffusers conversions).

static const char *const s_wan21_13b_paths [] = {
    "diffusion_pytorch_model.safetensors", "models_t5_umt5-xxl-enc-bf16.pth", "Wan2.1_VAE.pth",
    "config.json", "google/umt5-xxl/", NULL
};
static const char *const s_wan21_14b_paths [] = {
    "diffusion_pytorch_model*", "models_t5_umt5-xxl-enc-bf16.pth", "Wan2.1_VAE.pth",
    "config.json", "google/umt5-xxl/", NULL
};
//  Image-to-video (480P and 720P: the same file names): 7 F32 DiT shards (16.39 G parameters,
//  65.6 GB) with their index, umT5 (11.4 GB), the CLIP ViT-H/14 .pth (1.19 G parameters
//  with the unused text tower, 4.77 GB), the VAE (0.51 GB). The XLM-R tokenizer folder is
//  not needed (the CLIP text tower is never run).
static const char *const s_wan21_i2v_paths [] = {
    "diffusion_pytorch_model*", "models_t5_umt5-xxl-enc-bf16.pth",
    "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth", "Wan2.1_VAE.pth", "config.json",
    "google/umt5-xxl/", NULL
};
static const char *const s_wan21_diffusers_paths [] = {
    "model_index.json", "scheduler/", "text_encoder/", "tokenizer/", "transformer/", "vae/", NULL
};

static const vdgx_model_source_t s_wan21_13b = {
    "wan21-1.3b", "Wan-AI/Wan2.1-T2V-1.3B",
    "Wan 2.1 text-to-video 1.3B, official layout (about 17 GB)", s_wan21_13b_paths
};
static const vdgx_model_source_t s_wan21_14b = {
    "wan21-14b", "Wan-AI/Wan2.1-T2V-14B",
    "Wan 2.1 text-to-video 14B, official layout, 6 DiT shards (about 69 GB)", s_wan21_14b_paths
};
static const vdgx_model_source_t s_wan21_13b_diffusers = {
    "wan21-1.3b-diffusers", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
    "Wan 2.1 text-to-video 1.3B, diffusers layout", s_wan21_diffusers_paths
};
static const vdgx_model_source_t s_wan21_14b_diffusers = {
    "wan21-14b-diffusers", "Wan-AI/Wan2.1-T2V-14B-Diffusers",
    "Wan 2.1 text-to-video 14B, diffusers layout", s_wan21_diffusers_paths
};
static const vdgx_model_source_t s_wan21_i2v_480p = {
    "wan21-i2v-14b-480p", "Wan-AI/Wan2.1-I2V-14B-480P",
    "Wan 2.1 image-to-video 14B 480P, official layout, 7 DiT shards + CLIP (about 82 GB)", s_wan21_i2v_paths
};
static const vdgx_model_source_t s_wan21_i2v_720p = {
    "wan21-i2v-14b-720p", "Wan-AI/Wan2.1-I2V-14B-720P",
    "Wan 2.1 image-to-video 14B 720P, official layout, 7 DiT shards + CLIP (about 82 GB)", s_wan21_i2v_paths
};
static const vdgx_model_source_t s_wan21_flf2v_720p = {
    "wan21-flf2v-14b-720p", "Wan-AI/Wan2.1-FLF2V-14B-720P",
    "Wan 2.1 first-last-frame-to-video 14B 720P, official layout (about 82 GB)", s_wan21_i2v_paths
};
//  LTX-2 / LTX-2.3: one single-file checkpoint each (DiT + connectors, text projection, video
//  and audio VAEs, vocoder; sizes from the hub's LFS pointers), and Gemma 3 12B (the text
//  encoder, a gated repository: HF_TOKEN) into the folder the ltx2 engine looks for beside it:
//      vdgx models download ltx23-22b --dir W
//      vdgx models download gemma3-12b-ltx --dir W/gemma-3-12b-it-qat-q4_0-unquantized
static const char *const s_ltx2_19b_dev [] = { "ltx-2-19b-dev.safetensors", NULL };
static const char *const s_ltx2_19b_dev_fp8 [] = { "ltx-2-19b-dev-fp8.safetensors", NULL };
static const char *const s_ltx2_19b_dist [] = { "ltx-2-19b-distilled.safetensors", NULL };
static const char *const s_ltx2_19b_dist_fp8 [] = { "ltx-2-19b-distilled-fp8.safetensors", NULL };
static const char *const s_ltx23_dev [] = { "ltx-2.3-22b-dev.safetensors", NULL };
static const char *const s_ltx23_dev_q [] = { "ltx-2.3-22b-dev*", NULL };
static const char *const s_ltx23_dist [] = { "ltx-2.3-22b-distilled-1.1.safetensors", NULL };
static const char *const s_ltx23_dist_q [] = { "ltx-2.3-22b-distilled*", NULL };
static const char *const s_gemma3_12b [] = {
    "config.json", "generation_config.json", "model*", "tokenizer.model",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", NULL
};
static const vdgx_model_source_t s_ltx2_sources [] = {
    { "ltx2-19b", "Lightricks/LTX-2",
      "LTX-2 19B audio+video, ltx-2-19b-dev.safetensors (about 43 GB)", s_ltx2_19b_dev },
    { "ltx2-19b-fp8", "Lightricks/LTX-2",
      "LTX-2 19B, FP8 block weights, ltx-2-19b-dev-fp8.safetensors (about 27 GB)", s_ltx2_19b_dev_fp8 },
    { "ltx2-19b-distilled", "Lightricks/LTX-2",
      "LTX-2 19B distilled (8 steps), ltx-2-19b-distilled.safetensors (43.3 GB)", s_ltx2_19b_dist },
    { "ltx2-19b-distilled-fp8", "Lightricks/LTX-2",
      "LTX-2 19B distilled, FP8, ltx-2-19b-distilled-fp8.safetensors (27.1 GB)", s_ltx2_19b_dist_fp8 },
    { "ltx23-22b", "Lightricks/LTX-2.3",
      "LTX-2.3 22B audio+video, ltx-2.3-22b-dev.safetensors (46.1 GB)", s_ltx23_dev },
    { "ltx23-22b-distilled", "Lightricks/LTX-2.3",
      "LTX-2.3 22B distilled 1.1 (8 steps), ltx-2.3-22b-distilled-1.1.safetensors (46.1 GB)", s_ltx23_dist },
    { "ltx23-22b-fp8", "Lightricks/LTX-2.3-fp8",
      "LTX-2.3 22B dev, FP8 block weights (the -fp8 repository)", s_ltx23_dev_q },
    { "ltx23-22b-distilled-fp8", "Lightricks/LTX-2.3-fp8",
      "LTX-2.3 22B distilled, FP8 (the -fp8 repository)", s_ltx23_dist_q },
    { "ltx23-22b-nvfp4", "Lightricks/LTX-2.3-nvfp4",
      "LTX-2.3 22B dev, NVFP4 block weights (the -nvfp4 repository; native on Blackwell)", s_ltx23_dev_q },
    { "ltx23-22b-distilled-nvfp4", "Lightricks/LTX-2.3-nvfp4",
      "LTX-2.3 22B distilled, NVFP4 (the -nvfp4 repository)", s_ltx23_dist_q },
    { "gemma3-12b-ltx", "google/gemma-3-12b-it-qat-q4_0-unquantized",
      "Gemma 3 12B, the LTX-2 text encoder (gated: accept the license, set HF_TOKEN; about 24 GB)",
      s_gemma3_12b },
};

//  MAGI-1 (sand-ai/MAGI-1): one repository, folders per variant under ckpt/magi/, the shared
//  T5-v1.1-XXL encoder (HF torch.save shards, about 19 GB, float32) and the ViT VAE (about
//  2.4 GB) beside them. The DiT sizes are those of bf16 weights (4.5B: 2 shards, about 9 GB).
//  special_tokens.npz is not in this repository: it is example/assets/ of the MAGI-1 code.
#define S_MAGI1_SHARED "ckpt/t5/t5-v1_1-xxl/", "ckpt/vae/"
static const char *const s_magi1_45b_distill_paths [] = { "ckpt/magi/4.5B_distill/", S_MAGI1_SHARED, NULL };
static const char *const s_magi1_45b_quant_paths [] = { "ckpt/magi/4.5B_distill_quant/", S_MAGI1_SHARED, NULL };
static const char *const s_magi1_45b_paths [] = { "ckpt/magi/4.5B_base/", S_MAGI1_SHARED, NULL };
static const char *const s_magi1_24b_distill_paths [] = { "ckpt/magi/24B_distill/", S_MAGI1_SHARED, NULL };
static const char *const s_magi1_24b_quant_paths [] = { "ckpt/magi/24B_distill_quant/", S_MAGI1_SHARED, NULL };
static const char *const s_magi1_24b_paths [] = { "ckpt/magi/24B_base/", S_MAGI1_SHARED, NULL };
static const char *const s_magi1_vae_paths [] = { "ckpt/vae/", NULL };
static const char *const s_magi1_t5_paths [] = { "ckpt/t5/t5-v1_1-xxl/", NULL };
static const vdgx_model_source_t s_magi1 [] = {
    { "magi1-4.5b-distill", "sand-ai/MAGI-1", "MAGI-1 4.5B distilled (serve as magi1-4.5b-distill) "
      "+ T5 + VAE (about 30 GB)", s_magi1_45b_distill_paths },
    { "magi1-4.5b-distill-quant", "sand-ai/MAGI-1", "MAGI-1 4.5B distilled, FP8 (magi1-4.5b-"
      "distill-quant) + T5 + VAE (about 26 GB)", s_magi1_45b_quant_paths },
    { "magi1-4.5b", "sand-ai/MAGI-1", "MAGI-1 4.5B base (magi1-4.5b) + T5 + VAE (about 30 GB)",
      s_magi1_45b_paths },
    { "magi1-24b-distill", "sand-ai/MAGI-1", "MAGI-1 24B distilled (magi1-24b-distill) + T5 + "
      "VAE (about 70 GB)", s_magi1_24b_distill_paths },
    { "magi1-24b-distill-quant", "sand-ai/MAGI-1", "MAGI-1 24B distilled, FP8 (magi1-24b-"
      "distill-quant) + T5 + VAE (about 47 GB)", s_magi1_24b_quant_paths },
    { "magi1-24b", "sand-ai/MAGI-1", "MAGI-1 24B base (magi1-24b) + T5 + VAE (about 70 GB)",
      s_magi1_24b_paths },
    { "magi1-vae", "sand-ai/MAGI-1", "MAGI-1 ViT VAE only (about 2.4 GB)", s_magi1_vae_paths },
    { "magi1-t5", "sand-ai/MAGI-1", "MAGI-1's T5-v1.1-XXL encoder only (about 19 GB)", s_magi1_t5_paths },
};
static const vdgx_model_source_t *const s_sources [] = {
    &s_wan21_13b, &s_wan21_14b, &s_wan21_13b_diffusers, &s_wan21_14b_diffusers,
    &s_wan21_i2v_480p, &s_wan21_i2v_720p, &s_wan21_flf2v_720p,
    &s_ltx2_sources [0], &s_ltx2_sources [1], &s_ltx2_sources [2], &s_ltx2_sources [3],
    &s_ltx2_sources [4], &s_ltx2_sources [5], &s_ltx2_sources [6], &s_ltx2_sources [7],
    &s_ltx2_sources [8], &s_ltx2_sources [9], &s_ltx2_sources [10],
    &s_magi1 [0], &s_magi1 [1], &s_magi1 [2], &s_magi1 [3], &s_magi1 [4], &s_magi1 [5],
    &s_magi1 [6], &s_magi1 [7], NULL
};

const vdgx_model_source_t *const *
vdgx_model_sources (void)
{
    return s_sources;
}

const vdgx_model_source_t *
vdgx_model_source_find (const char *name)
{
    for (const vdgx_model_source_t *const *s = s_sources; *s; s++)
        if (strcmp ((*s)->name, name) == 0)
            return *s;
    return NULL;
}

//  --------------------------------------------------------------------------

typedef struct {
    char *path;
    uint64_t size;
    char sha256 [VDGX_SHA256_HEX_SIZE];     //  "" when the hub gives none (non-LFS file)
} s_file_t;

struct _vdgx_download_t {
    char *endpoint;
    char *token;
    char *dest_dir;
    bool progress;
    char error [512];
    uint64_t fetched;
    //  progress state of the current file
    const char *cur_name;
    uint64_t cur_total, cur_base;
    double last_draw;
};

static int
s_fail (vdgx_download_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->error, sizeof self->error, fmt, args);
    va_end (args);
    return -1;
}

vdgx_download_t *
vdgx_download_new (const char *endpoint, const char *token, const char *dest_dir)
{
    if (!dest_dir)
        return NULL;
    vdgx_download_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    if (!endpoint || !*endpoint)
        endpoint = getenv ("HF_ENDPOINT");
    if (!endpoint || !*endpoint)
        endpoint = DEFAULT_ENDPOINT;
    if (!token || !*token)
        token = getenv ("HF_TOKEN");
    self->endpoint = strdup (endpoint);
    size_t len = strlen (self->endpoint);
    while (len > 0 && self->endpoint [len - 1] == '/')
        self->endpoint [--len] = 0;
    self->token = token && *token? strdup (token): NULL;
    self->dest_dir = strdup (dest_dir);
    self->progress = isatty (STDERR_FILENO);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    return self;
}

void
vdgx_download_destroy (vdgx_download_t **self_p)
{
    if (self_p && *self_p) {
        vdgx_download_t *self = *self_p;
        free (self->endpoint);
        if (self->token) {
            memset (self->token, 0, strlen (self->token));
            free (self->token);
        }
        free (self->dest_dir);
        free (self);
        *self_p = NULL;
    }
}

void
vdgx_download_set_progress (vdgx_download_t *self, bool show)
{
    self->progress = show;
}

const char *
vdgx_download_error (vdgx_download_t *self)
{
    return self->error;
}

uint64_t
vdgx_download_bytes_fetched (vdgx_download_t *self)
{
    return self->fetched;
}

//  Creates every directory of path's parent (mkdir -p).
static int
s_mkdirs (const char *path, bool include_last)
{
    char buf [PATH_MAX];
    if (snprintf (buf, sizeof buf, "%s", path) >= (int) sizeof buf)
        return -1;
    if (!include_last) {
        char *slash = strrchr (buf, '/');
        if (!slash)
            return 0;
        *slash = 0;
    }
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char saved = *p;
            *p = 0;
            if (*buf && mkdir (buf, 0755) != 0 && errno != EEXIST)
                return -1;
            if (saved == 0)
                break;
            *p = saved;
        }
    }
    return 0;
}

//  A hub path is relative, with no "..", no empty or "." segments and no backslashes:
//  a hostile listing must not write outside the destination directory.
static bool
s_path_is_safe (const char *path)
{
    if (!path || !*path || *path == '/' || strlen (path) > 1024 || strchr (path, '\\'))
        return false;
    const char *seg = path;
    while (*seg) {
        const char *end = strchr (seg, '/');
        size_t n = end? (size_t) (end - seg): strlen (seg);
        if (n == 0 || (n == 1 && seg [0] == '.') || (n == 2 && seg [0] == '.' && seg [1] == '.'))
            return false;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char) seg [i] < 0x20)
                return false;
        seg += n;
        if (*seg == '/')
            seg++;
    }
    return true;
}

//  Does a listed file belong to the model's wanted paths?
static bool
s_wanted (const vdgx_model_source_t *model, const char *path)
{
    for (const char *const *p = model->paths; *p; p++) {
        size_t n = strlen (*p);
        if (n > 0 && (*p) [n - 1] == '/') {
            if (strncmp (path, *p, n) == 0)
                return true;
        }
        else
        if (n > 0 && (*p) [n - 1] == '*') {
            if (strncmp (path, *p, n - 1) == 0 && !strchr (path + n - 1, '/'))
                return true;
        }
        else
        if (strcmp (path, *p) == 0)
            return true;
    }
    return false;
}

//  Percent-encodes a repository path for a URL (keeps '/').
static char *
s_url_path (const char *path)
{
    size_t len = strlen (path);
    char *out = malloc (len * 3 + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (const unsigned char *p = (const unsigned char *) path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
        ||  strchr ("-._~/", *p))
            *o++ = (char) *p;
        else
            o += sprintf (o, "%%%02X", *p);
    }
    *o = 0;
    return out;
}

typedef struct {
    char *data;
    size_t size;
    bool overflow;
} s_buffer_t;

static size_t
s_buffer_write (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_buffer_t *buf = userdata;
    size_t n = size * nmemb;
    if (buf->size + n > TREE_MAX_BYTES) {
        buf->overflow = true;
        return 0;
    }
    char *grown = realloc (buf->data, buf->size + n + 1);
    if (!grown)
        return 0;
    buf->data = grown;
    memcpy (buf->data + buf->size, ptr, n);
    buf->size += n;
    buf->data [buf->size] = 0;
    return n;
}

static struct curl_slist *
s_headers (vdgx_download_t *self)
{
    struct curl_slist *headers = NULL;
    headers = curl_slist_append (headers, "User-Agent: vdgx-download/1");
    if (self->token) {
        char auth [1024];
        snprintf (auth, sizeof auth, "Authorization: Bearer %s", self->token);
        headers = curl_slist_append (headers, auth);
        memset (auth, 0, sizeof auth);
    }
    return headers;
}

static void
s_curl_common (CURL *curl, struct curl_slist *headers)
{
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt (curl, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT, 30L);
    //  A stalled transfer (under 1 KB/s for 60 s) is an error, not a hang.
    curl_easy_setopt (curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt (curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    //  Authorization must not follow a redirect to another host (the hub redirects LFS
    //  files to a CDN); curl drops it by default unless UNRESTRICTED_AUTH is set.
}

static const char *
s_http_status_text (long code)
{
    switch (code) {
        case 401: return "unauthorized: the repository needs a token (--token or HF_TOKEN)";
        case 403: return "forbidden: accept the model's licence on the hub, or check the token";
        case 404: return "not found";
        case 416: return "range not satisfiable";
        case 429: return "rate limited by the hub; try again later";
        default:  return code >= 500? "hub server error": "unexpected HTTP status";
    }
}

//  Lists the model's files with the hub's tree API.
static int
s_list_files (vdgx_download_t *self, const vdgx_model_source_t *model, const char *revision,
              s_file_t **files_p, size_t *count_p)
{
    char url [2048];
    snprintf (url, sizeof url, "%s/api/models/%s/tree/%s?recursive=true",
              self->endpoint, model->repo, revision);
    CURL *curl = curl_easy_init ();
    if (!curl)
        return s_fail (self, "cannot start an HTTP client");
    struct curl_slist *headers = s_headers (self);
    s_buffer_t buf = { NULL, 0, false };
    s_curl_common (curl, headers);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_buffer_write);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &buf);
    CURLcode rc = curl_easy_perform (curl);
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup (curl);
    curl_slist_free_all (headers);
    if (buf.overflow) {
        free (buf.data);
        return s_fail (self, "file listing of %s is larger than %u bytes", model->repo, TREE_MAX_BYTES);
    }
    if (rc != CURLE_OK) {
        free (buf.data);
        return s_fail (self, "cannot list %s at %s: %s", model->repo, self->endpoint,
                       curl_easy_strerror (rc));
    }
    if (status != 200) {
        free (buf.data);
        return s_fail (self, "cannot list %s: HTTP %ld (%s)", model->repo, status,
                       s_http_status_text (status));
    }
    json_error_t jerr;
    json_t *root = json_loadb (buf.data? buf.data: "", buf.size, 0, &jerr);
    free (buf.data);
    if (!root || !json_is_array (root)) {
        json_decref (root);
        return s_fail (self, "file listing of %s is not a JSON array", model->repo);
    }
    s_file_t *files = NULL;
    size_t count = 0;
    size_t index;
    json_t *item;
    json_array_foreach (root, index, item) {
        const char *type = json_string_value (json_object_get (item, "type"));
        const char *path = json_string_value (json_object_get (item, "path"));
        if (!type || strcmp (type, "file") != 0 || !path || !s_wanted (model, path))
            continue;
        if (!s_path_is_safe (path)) {
            json_decref (root);
            for (size_t i = 0; i < count; i++)
                free (files [i].path);
            free (files);
            return s_fail (self, "file listing of %s names an unsafe path", model->repo);
        }
        json_t *size = json_object_get (item, "size");
        json_t *lfs = json_object_get (item, "lfs");
        const char *sha = json_string_value (json_object_get (lfs, "oid"));
        if (lfs && json_is_integer (json_object_get (lfs, "size")))
            size = json_object_get (lfs, "size");
        if (!json_is_integer (size) || json_integer_value (size) < 0 || count >= MAX_FILES) {
            json_decref (root);
            for (size_t i = 0; i < count; i++)
                free (files [i].path);
            free (files);
            return s_fail (self, "file listing of %s has a bad entry for %s", model->repo, path);
        }
        s_file_t *grown = realloc (files, (count + 1) * sizeof *files);
        if (!grown)
            break;
        files = grown;
        s_file_t *f = &files [count++];
        f->path = strdup (path);
        f->size = (uint64_t) json_integer_value (size);
        f->sha256 [0] = 0;
        if (sha && vdgx_sha256_is_hex (sha))
            snprintf (f->sha256, sizeof f->sha256, "%s", sha);
    }
    json_decref (root);
    //  Every wanted exact path must be present: a missing file is an error now, not later.
    for (const char *const *p = model->paths; *p; p++) {
        size_t n = strlen (*p);
        bool found = false;
        for (size_t i = 0; i < count && !found; i++) {
            if ((*p) [n - 1] == '/' || (*p) [n - 1] == '*')
                found = strncmp (files [i].path, *p, n - 1) == 0;
            else
                found = strcmp (files [i].path, *p) == 0;
        }
        if (!found) {
            for (size_t i = 0; i < count; i++)
                free (files [i].path);
            free (files);
            return s_fail (self, "%s has no %s (not found in the file listing)", model->repo, *p);
        }
    }
    *files_p = files;
    *count_p = count;
    return 0;
}

//  Monotonic seconds.
static double
s_now (void)
{
    return zclock_usecs () / 1e6;
}

static void
s_draw (vdgx_download_t *self, uint64_t done, bool final)
{
    if (!self->progress)
        return;
    double now = s_now ();
    if (!final && now - self->last_draw < 0.1)
        return;
    self->last_draw = now;
    double frac = self->cur_total? (double) done / (double) self->cur_total: 1.0;
    if (frac > 1)
        frac = 1;
    int width = 30, fill = (int) (frac * width);
    char bar [64];
    for (int i = 0; i < width; i++)
        bar [i] = i < fill? '#': '.';
    bar [width] = 0;
    fprintf (stderr, "\r%-40.40s [%s] %5.1f%% %8.1f MB", self->cur_name, bar, frac * 100,
             done / 1e6);
    if (final)
        fputc ('\n', stderr);
    fflush (stderr);
}

typedef struct {
    vdgx_download_t *self;
    FILE *out;
    uint64_t written;
    bool write_failed;
} s_sink_t;

static size_t
s_file_write (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_sink_t *sink = userdata;
    size_t n = size * nmemb;
    if (fwrite (ptr, 1, n, sink->out) != n) {
        sink->write_failed = true;
        return 0;
    }
    sink->written += n;
    sink->self->fetched += n;
    s_draw (sink->self, sink->self->cur_base + sink->written, false);
    return n;
}

//  Verifies a complete file against the listing: size, then sha256 when known.
static int
s_verify (vdgx_download_t *self, const char *path, const s_file_t *f)
{
    struct stat st;
    if (stat (path, &st) != 0)
        return s_fail (self, "%s: %s", path, strerror (errno));
    if ((uint64_t) st.st_size != f->size)
        return s_fail (self, "%s: size %llu, expected %llu", f->path,
                       (unsigned long long) st.st_size, (unsigned long long) f->size);
    if (f->sha256 [0]) {
        char hex [VDGX_SHA256_HEX_SIZE];
        if (vdgx_sha256_file (path, hex) != 0)
            return s_fail (self, "%s: cannot read back: %s", path, strerror (errno));
        if (strcmp (hex, f->sha256) != 0)
            return s_fail (self, "%s: sha256 mismatch (got %s, expected %s)", f->path, hex, f->sha256);
    }
    return 0;
}

static int
s_fetch_file (vdgx_download_t *self, const vdgx_model_source_t *model, const char *revision,
              const s_file_t *f)
{
    char final_path [PATH_MAX], part_path [PATH_MAX];
    if (snprintf (final_path, sizeof final_path, "%s/%s", self->dest_dir, f->path) >= (int) sizeof final_path
    ||  snprintf (part_path, sizeof part_path, "%s.part", final_path) >= (int) sizeof part_path)
        return s_fail (self, "%s: path too long", f->path);
    if (s_mkdirs (final_path, false) != 0)
        return s_fail (self, "cannot create the folder for %s: %s", final_path, strerror (errno));

    //  Already there and verified: nothing to do.
    struct stat st;
    if (stat (final_path, &st) == 0 && (uint64_t) st.st_size == f->size
    &&  s_verify (self, final_path, f) == 0)
        return 0;

    uint64_t have = 0;
    if (stat (part_path, &st) == 0) {
        have = (uint64_t) st.st_size;
        if (have > f->size) {       //  longer than the real file: start over
            unlink (part_path);
            have = 0;
        }
    }
    self->cur_name = f->path;
    self->cur_total = f->size;
    self->cur_base = have;

    if (have < f->size || f->size == 0) {
        char *enc = s_url_path (f->path);
        char url [4096];
        snprintf (url, sizeof url, "%s/%s/resolve/%s/%s", self->endpoint, model->repo, revision,
                  enc? enc: f->path);
        free (enc);
        FILE *out = fopen (part_path, have? "ab": "wb");
        if (!out)
            return s_fail (self, "cannot write %s: %s", part_path, strerror (errno));
        CURL *curl = curl_easy_init ();
        struct curl_slist *headers = s_headers (self);
        s_sink_t sink = { self, out, 0, false };
        s_curl_common (curl, headers);
        curl_easy_setopt (curl, CURLOPT_URL, url);
        curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_file_write);
        curl_easy_setopt (curl, CURLOPT_WRITEDATA, &sink);
        curl_easy_setopt (curl, CURLOPT_FAILONERROR, 0L);
        char range [64];
        if (have > 0) {
            snprintf (range, sizeof range, "%llu-", (unsigned long long) have);
            curl_easy_setopt (curl, CURLOPT_RANGE, range);
        }
        CURLcode rc = curl_easy_perform (curl);
        long status = 0;
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup (curl);
        curl_slist_free_all (headers);
        int close_rc = fclose (out);
        s_draw (self, have + sink.written, true);
        if (sink.write_failed || close_rc != 0)
            return s_fail (self, "cannot write %s (disk full?)", part_path);
        if (status == 200 && have > 0) {
            //  The server ignored the Range: what we appended is the whole file again.
            //  Keep only the fresh copy.
            if (truncate (part_path, 0) != 0)
                return s_fail (self, "cannot reset %s", part_path);
            return s_fail (self, "%s: the server does not support resuming; run again to restart",
                           f->path);
        }
        if (rc != CURLE_OK && !(status == 200 || status == 206))
            return s_fail (self, "%s: %s", f->path, curl_easy_strerror (rc));
        if (status != 200 && status != 206) {
            if (status >= 400 && sink.written > 0 && truncate (part_path, (off_t) have) != 0)
                return s_fail (self, "cannot restore %s", part_path);
            return s_fail (self, "%s: HTTP %ld (%s)", f->path, status, s_http_status_text (status));
        }
        if (rc != CURLE_OK)
            return s_fail (self, "%s: transfer interrupted after %llu bytes (%s); run again to resume",
                           f->path, (unsigned long long) (have + sink.written), curl_easy_strerror (rc));
    }
    if (s_verify (self, part_path, f) != 0) {
        //  A corrupt .part cannot be resumed into a good file: remove it.
        unlink (part_path);
        return -1;
    }
    if (rename (part_path, final_path) != 0)
        return s_fail (self, "cannot rename %s: %s", part_path, strerror (errno));
    return 0;
}

int
vdgx_download_model (vdgx_download_t *self, const vdgx_model_source_t *model, const char *revision)
{
    self->error [0] = 0;
    self->fetched = 0;
    if (!revision || !*revision)
        revision = "main";
    if (strchr (revision, '/') || strchr (revision, '?') || strchr (revision, ' '))
        return s_fail (self, "bad revision '%s'", revision);
    if (s_mkdirs (self->dest_dir, true) != 0)
        return s_fail (self, "cannot create %s: %s", self->dest_dir, strerror (errno));
    s_file_t *files = NULL;
    size_t count = 0;
    if (s_list_files (self, model, revision, &files, &count) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = s_fetch_file (self, model, revision, &files [i]);
    for (size_t i = 0; i < count; i++)
        free (files [i].path);
    free (files);
    return rc;
}

//  --------------------------------------------------------------------------
//  vdgx models download / sources

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: vdgx models download NAME [--dir DIR] [--endpoint URL] [--token TOKEN]\n"
        "                                 [--revision REV] [--no-progress]\n"
        "       vdgx models sources [--json]\n"
        "Downloads a model's weights (resumable, verified) into DIR (default models/NAME).\n"
        "Token: --token or HF_TOKEN. Hub: --endpoint, HF_ENDPOINT, or https://huggingface.co.\n");
}

int
vdgx_models_download_main (int argc, char **argv)
{
    if (argc < 1) {
        s_usage (stderr);
        return 2;
    }
    if (strcmp (argv [0], "sources") == 0) {
        bool json = argc == 2 && strcmp (argv [1], "--json") == 0;
        if (argc > 2 || (argc == 2 && !json)) {
            s_usage (stderr);
            return 2;
        }
        if (json) {
            json_t *list = json_array ();
            for (const vdgx_model_source_t *const *s = s_sources; *s; s++) {
                json_t *paths = json_array ();
                for (const char *const *p = (*s)->paths; p && *p; p++)
                    json_array_append_new (paths, json_string (*p));
                json_array_append_new (list, json_pack ("{s:s, s:s, s:s, s:o}", "name", (*s)->name,
                                                        "repo", (*s)->repo, "description",
                                                        (*s)->description, "paths", paths));
            }
            json_t *root = json_pack ("{s:o}", "sources", list);
            char *text = json_dumps (root, JSON_COMPACT);
            printf ("%s\n", text);
            free (text);
            json_decref (root);
            return 0;
        }
        for (const vdgx_model_source_t *const *s = s_sources; *s; s++)
            printf ("%-25s %-33s %s\n", (*s)->name, (*s)->repo, (*s)->description);
        return 0;
    }
    if (strcmp (argv [0], "download") != 0) {
        s_usage (stderr);
        return 2;
    }
    static const struct option options [] = {
        { "dir", required_argument, NULL, 'd' },
        { "endpoint", required_argument, NULL, 'e' },
        { "token", required_argument, NULL, 't' },
        { "revision", required_argument, NULL, 'r' },
        { "no-progress", no_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *dir = NULL, *endpoint = NULL, *token = NULL, *revision = "main";
    bool progress = true;
    optind = 1;
    int c;
    while ((c = getopt_long (argc, argv, "d:e:t:r:nh", options, NULL)) != -1) {
        switch (c) {
            case 'd': dir = optarg; break;
            case 'e': endpoint = optarg; break;
            case 't': token = optarg; break;
            case 'r': revision = optarg; break;
            case 'n': progress = false; break;
            case 'h': s_usage (stdout); return 0;
            default:  s_usage (stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        s_usage (stderr);
        return 2;
    }
    const char *name = argv [optind];
    const vdgx_model_source_t *model = vdgx_model_source_find (name);
    if (!model) {
        fprintf (stderr, "vdgx: unknown model '%s'; known models:\n", name);
        for (const vdgx_model_source_t *const *s = s_sources; *s; s++)
            fprintf (stderr, "  %s\n", (*s)->name);
        return 2;
    }
    char default_dir [PATH_MAX];
    if (!dir) {
        snprintf (default_dir, sizeof default_dir, "models/%s", model->name);
        dir = default_dir;
    }
    vdgx_download_t *dl = vdgx_download_new (endpoint, token, dir);
    if (!dl) {
        fprintf (stderr, "vdgx: out of memory\n");
        return 1;
    }
    if (!progress)
        vdgx_download_set_progress (dl, false);
    int rc = vdgx_download_model (dl, model, revision);
    if (rc == 0)
        printf ("%s: downloaded and verified into %s\n", model->name, dir);
    else
        fprintf (stderr, "vdgx: download of %s failed: %s\n", model->name, vdgx_download_error (dl));
    vdgx_download_destroy (&dl);
    return rc == 0? 0: 1;
}
