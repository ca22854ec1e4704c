/*  ltx2_prompt.c - prompts to LTX-2 contexts with a cache and Gemma's lifetime policy
    (see ltx2_prompt.h).
*/
#include "ltx2_prompt.h"

#include <assert.h>
#include <czmq.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gemma3.h"
#include "gemma3_tok.h"

typedef struct {
    char *prompt;
    float *video, *audio;           //  host [T, video_dim], [T, audio_dim]
    uint64_t used;                  //  LRU stamp
} s_entry_t;

struct _ltx2_prompt_t {
    ltx2_text_t *text;
    vdgx_backend_t *backend;
    char *gemma_path;
    vdgx_wfmt_t wfmt;
    int max_tokens;
    vdgx_tok_t *tok;
    gemma3_t *gemma;
    bool free_after;                //  the resolved policy
    s_entry_t *cache;
    int cache_cap;
    uint64_t clock;
    int loads, hits, misses;
    char error [512];
};

static void
s_set_error (ltx2_prompt_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->error, sizeof (self->error), fmt, args);
    va_end (args);
}

bool
ltx2_prompt_memory_short (size_t host_bytes, size_t gemma_bytes, size_t reserve_bytes)
{
    return host_bytes < gemma_bytes + reserve_bytes;
}

static size_t
s_host_bytes (void)
{
    FILE *f = fopen ("/proc/meminfo", "r");
    unsigned long long kb = 0;
    char line [256];
    while (f && fgets (line, sizeof (line), f))
        if (sscanf (line, "MemTotal: %llu kB", &kb) == 1)
            break;
    if (f)
        fclose (f);
    return (size_t) kb * 1024;
}

//  Bytes Gemma's text decoder takes in wfmt: its parameters counted from the checkpoint.
static int
s_gemma_bytes (const char *path, vdgx_wfmt_t wfmt, size_t *bytes, char **err)
{
    char file [4096];
    struct stat st;
    snprintf (file, sizeof (file), "%s/model.safetensors.index.json", path);
    if (stat (file, &st) != 0)
        snprintf (file, sizeof (file), "%s/model.safetensors", path);
    if (stat (path, &st) == 0 && !S_ISDIR (st.st_mode))
        snprintf (file, sizeof (file), "%s", path);
    vdgx_ckpt_t *ck = vdgx_ckpt_open (file, err);
    if (!ck)
        return -1;
    double params = 0;
    for (size_t i = 0; i < vdgx_ckpt_count (ck); i++) {
        const vdgx_ckpt_tensor_t *t = vdgx_ckpt_at (ck, i);
        if (strstr (t->name, "vision_tower") || strstr (t->name, "multi_modal_projector"))
            continue;
        params += (double) t->nbytes / (double) vdgx_dtype_size (t->dtype);
    }
    vdgx_ckpt_destroy (&ck);
    *bytes = (size_t) (params * (double) vdgx_wfmt_bytes (wfmt, 1, 64) / 64.0);
    return 0;
}

ltx2_prompt_t *
ltx2_prompt_new (ltx2_text_t *text, vdgx_backend_t *backend, const ltx2_prompt_options_t *options,
                 char **err)
{
    assert (text && backend && options && err);
    *err = NULL;
    if (!options->gemma_path || options->cache_entries < 0 || options->max_tokens < 0) {
        *err = strdup ("LTX-2 prompt encoder: gemma_path missing or negative sizes");
        return NULL;
    }
    ltx2_prompt_t *self = (ltx2_prompt_t *) calloc (1, sizeof (ltx2_prompt_t));
    if (!self || !(self->gemma_path = strdup (options->gemma_path))) {
        free (self);
        *err = strdup ("out of memory");
        return NULL;
    }
    self->text = text;
    self->backend = backend;
    self->wfmt = options->gemma_wfmt;
    self->max_tokens = options->max_tokens? options->max_tokens: 1024;
    self->cache_cap = options->cache_entries;
    if (self->cache_cap && !(self->cache = (s_entry_t *) calloc ((size_t) self->cache_cap, sizeof (s_entry_t)))) {
        *err = strdup ("out of memory");
        ltx2_prompt_destroy (&self);
        return NULL;
    }
    char *terr = NULL;
    vdgx_tok_opts_t tok_opts = gemma3_tok_opts ();
    self->tok = vdgx_tok_new (options->tokenizer_path? options->tokenizer_path: options->gemma_path,
                              &tok_opts, &terr);
    if (!self->tok) {
        *err = terr;
        ltx2_prompt_destroy (&self);
        return NULL;
    }
    size_t gemma_bytes = 0;
    if (s_gemma_bytes (options->gemma_path, self->wfmt, &gemma_bytes, &terr)) {
        *err = zsys_sprintf ("LTX-2 prompt encoder: Gemma weights: %s", terr? terr: "cannot open");
        free (terr);
        ltx2_prompt_destroy (&self);
        return NULL;
    }
    size_t host = options->host_bytes? options->host_bytes: s_host_bytes ();
    self->free_after = options->policy == LTX2_GEMMA_FREE
                    || (options->policy == LTX2_GEMMA_AUTO
                        && ltx2_prompt_memory_short (host, gemma_bytes, options->reserve_bytes));
    return self;
}

void
ltx2_prompt_destroy (ltx2_prompt_t **self_p)
{
    assert (self_p);
    ltx2_prompt_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->cache_cap && self->cache; i++) {
        free (self->cache [i].prompt);
        free (self->cache [i].video);
        free (self->cache [i].audio);
    }
    free (self->cache);
    gemma3_destroy (&self->gemma);
    vdgx_tok_destroy (&self->tok);
    free (self->gemma_path);
    free (self);
    *self_p = NULL;
}

const char *
ltx2_prompt_error (ltx2_prompt_t *self)
{
    assert (self);
    return self->error;
}

void
ltx2_prompt_release_gemma (ltx2_prompt_t *self)
{
    assert (self);
    gemma3_destroy (&self->gemma);
    vdgx_backend_trim (self->backend);
}

bool
ltx2_prompt_gemma_loaded (ltx2_prompt_t *self)
{
    assert (self);
    return self->gemma != NULL;
}

bool
ltx2_prompt_frees_gemma (ltx2_prompt_t *self)
{
    assert (self);
    return self->free_after;
}

void
ltx2_prompt_stats (ltx2_prompt_t *self, int *loads, int *hits, int *misses)
{
    assert (self);
    if (loads)
        *loads = self->loads;
    if (hits)
        *hits = self->hits;
    if (misses)
        *misses = self->misses;
}

static int
s_load_gemma (ltx2_prompt_t *self)
{
    if (self->gemma)
        return 0;
    char *err = NULL;
    self->gemma = gemma3_new (self->gemma_path, self->backend, self->wfmt, &err);
    if (!self->gemma) {
        s_set_error (self, "%s", err? err: "Gemma 3: cannot load");
        free (err);
        return -1;
    }
    self->loads++;
    const gemma3_config_t *gc = gemma3_config (self->gemma);
    const ltx2_text_config_t *tc = ltx2_text_config (self->text);
    if ((int64_t) gc->hidden * (gc->layers + 1) != tc->feature_dim
     || vdgx_tok_vocab_size (self->tok) > gc->vocab) {
        s_set_error (self, "LTX-2 prompt encoder: Gemma (%d x %d hidden states, vocabulary %d) does "
                     "not fit the checkpoint's text path (%d features) or the tokenizer (%d)",
                     gc->layers + 1, gc->hidden, gc->vocab, tc->feature_dim,
                     vdgx_tok_vocab_size (self->tok));
        gemma3_destroy (&self->gemma);
        return -1;
    }
    return 0;
}

static s_entry_t *
s_lookup (ltx2_prompt_t *self, const char *prompt)
{
    for (int i = 0; i < self->cache_cap; i++)
        if (self->cache [i].prompt && strcmp (self->cache [i].prompt, prompt) == 0) {
            self->cache [i].used = ++self->clock;
            return &self->cache [i];
        }
    return NULL;
}

//  Runs tokenizer, Gemma and the text path; stores the contexts in a (possibly evicted) entry.
static s_entry_t *
s_compute (ltx2_prompt_t *self, const char *prompt, s_entry_t *scratch)
{
    const int T = self->max_tokens;
    const ltx2_text_config_t *tc = ltx2_text_config (self->text);
    int32_t *ids = (int32_t *) malloc (sizeof (int32_t) * (size_t) T);
    uint8_t *mask = (uint8_t *) malloc ((size_t) T);
    float *video = (float *) malloc (sizeof (float) * (size_t) T * tc->video_dim);
    float *audio = (float *) malloc (sizeof (float) * (size_t) T * tc->audio_dim);
    char *copy = strdup (prompt);
    vdgx_tensor_t hidden, v, a;
    memset (&hidden, 0, sizeof (hidden));
    memset (&v, 0, sizeof (v));
    memset (&a, 0, sizeof (a));
    s_entry_t *e = NULL;
    char *err = NULL;
    if (!ids || !mask || !video || !audio || !copy)
        s_set_error (self, "out of memory");
    else
    if (vdgx_tok_encode (self->tok, prompt, T, ids, mask, &err) < 0)
        s_set_error (self, "%s", err? err: "tokenizer failed");
    else
    if (s_load_gemma (self) == 0) {
        if (gemma3_forward (self->gemma, ids, mask, 1, T, &hidden, NULL, NULL))
            s_set_error (self, "%s", gemma3_error (self->gemma));
        else
        if (ltx2_text_encode (self->text, &hidden, mask, &v, &a))
            s_set_error (self, "%s", ltx2_text_error (self->text));
        else
        if (vdgx_tensor_to_f32 (self->backend, &v, video) || vdgx_tensor_to_f32 (self->backend, &a, audio))
            s_set_error (self, "LTX-2 prompt encoder: %s", vdgx_backend_error (self->backend));
        else {
            //  the least recently used entry (or the scratch one without a cache)
            e = scratch;
            for (int i = 0; i < self->cache_cap; i++)
                if (e == scratch || self->cache [i].used < e->used)
                    e = &self->cache [i];
            free (e->prompt);
            free (e->video);
            free (e->audio);
            e->prompt = copy;
            e->video = video;
            e->audio = audio;
            e->used = ++self->clock;
            copy = NULL;
            video = audio = NULL;
        }
    }
    free (err);
    vdgx_tensor_release (self->backend, &hidden);
    vdgx_tensor_release (self->backend, &v);
    vdgx_tensor_release (self->backend, &a);
    free (ids);
    free (mask);
    free (video);
    free (audio);
    free (copy);
    return e;
}

static int
s_upload (ltx2_prompt_t *self, const s_entry_t *e, vdgx_tensor_t *video, vdgx_tensor_t *audio)
{
    const ltx2_text_config_t *tc = ltx2_text_config (self->text);
    const vdgx_dtype_t act = vdgx_backend_act_dtype (self->backend);
    const int64_t sv [2] = { self->max_tokens, tc->video_dim }, sa [2] = { self->max_tokens, tc->audio_dim };
    if (vdgx_tensor_alloc (self->backend, video, act, 2, sv)
     || vdgx_tensor_alloc (self->backend, audio, act, 2, sa)
     || vdgx_tensor_from_f32 (self->backend, video, e->video)
     || vdgx_tensor_from_f32 (self->backend, audio, e->audio)) {
        s_set_error (self, "LTX-2 prompt encoder: %s", vdgx_backend_error (self->backend));
        vdgx_tensor_release (self->backend, video);
        vdgx_tensor_release (self->backend, audio);
        return -1;
    }
    return 0;
}

int
ltx2_prompt_encode_many (ltx2_prompt_t *self, const char *const *prompts, int count,
                         vdgx_tensor_t *videos, vdgx_tensor_t *audios)
{
    assert (self && prompts && count >= 0 && videos && audios);
    int rc = 0, done = 0;
    for (int i = 0; i < count; i++) {
        memset (&videos [i], 0, sizeof (videos [i]));
        memset (&audios [i], 0, sizeof (audios [i]));
    }
    for (int i = 0; i < count && rc == 0; i++, done++) {
        if (!prompts [i]) {
            s_set_error (self, "LTX-2 prompt encoder: prompt %d is NULL", i);
            rc = -1;
            break;
        }
        s_entry_t scratch;
        memset (&scratch, 0, sizeof (scratch));
        s_entry_t *e = s_lookup (self, prompts [i]);
        if (e)
            self->hits++;
        else {
            self->misses++;
            e = s_compute (self, prompts [i], &scratch);
        }
        rc = e? s_upload (self, e, &videos [i], &audios [i]): -1;
        if (e == &scratch) {
            free (scratch.prompt);
            free (scratch.video);
            free (scratch.audio);
        }
    }
    if (self->free_after && self->gemma)
        ltx2_prompt_release_gemma (self);
    if (rc)
        for (int i = 0; i < done; i++) {
            vdgx_tensor_release (self->backend, &videos [i]);
            vdgx_tensor_release (self->backend, &audios [i]);
        }
    return rc;
}

int
ltx2_prompt_encode (ltx2_prompt_t *self, const char *prompt, vdgx_tensor_t *video,
                    vdgx_tensor_t *audio)
{
    return ltx2_prompt_encode_many (self, &prompt, 1, video, audio);
}
