/*  wan21_engine_selftest.c - selftest of the wan21 engine on the tiny checkpoints: request
    validation, loading, a real job (text encoder, DiT, sampler, VAE), progress, seeds,
    cancellation, memory estimates; the image-to-video tiny model with PNG images made by
    libavcodec (the image field required and decoded, the size from its aspect).
*/
#include "wan21_engine.h"
#include "wan21_vae.h"
#include "vdgx_ckpt.h"

#include <libavcodec/avcodec.h>

#include <assert.h>
#include <ftw.h>
#include <sys/stat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
s_copy (const char *from, const char *to)
{
    FILE *in = fopen (from, "rb"), *out = fopen (to, "wb");
    assert (in && out);
    char buf [65536];
    size_t n;
    while ((n = fread (buf, 1, sizeof buf, in)) > 0)
        assert (fwrite (buf, 1, n, out) == n);
    fclose (in);
    assert (fclose (out) == 0);
}

//  The tiny checkpoint rearranged as a diffusers folder: tokenizer/, text_encoder/,
//  transformer/ (+ config.json) and vae/ with the AutoencoderKLWan key names.
static void
s_make_diffusers (const char *dir, const char *ddir)
{
    const char *sub [] = { "", "/tokenizer", "/text_encoder", "/transformer", "/vae" };
    char a [512], b [512];
    for (int i = 0; i < 5; i++) {
        snprintf (a, sizeof a, "%s%s", ddir, sub [i]);
        assert (mkdir (a, 0755) == 0);
    }
    const char *pairs [][2] = {
        { "google/umt5-xxl/spiece.model", "tokenizer/spiece.model" },
        { "diffusion_pytorch_model.safetensors", "transformer/diffusion_pytorch_model.safetensors" },
        { "config.json", "transformer/config.json" },
    };
    for (int i = 0; i < 3; i++) {
        snprintf (a, sizeof a, "%s/%s", dir, pairs [i][0]);
        snprintf (b, sizeof b, "%s/%s", ddir, pairs [i][1]);
        s_copy (a, b);
    }
    //  The .pth files rewritten as safetensors (the VAE with the diffusers names).
    for (int k = 0; k < 2; k++) {
        snprintf (a, sizeof a, "%s/%s", dir, k? "Wan2.1_VAE.pth": "models_t5_umt5-xxl-enc-bf16.pth");
        char *err = NULL;
        vdgx_ckpt_t *ck = vdgx_ckpt_open (a, &err);
        if (!ck)
            printf ("%s: %s\n", a, err);
        assert (ck);
        size_t n = vdgx_ckpt_count (ck);
        vdgx_ckpt_tensor_t *t = (vdgx_ckpt_tensor_t *) calloc (n, sizeof *t);
        char (*names) [160] = (char (*) [160]) calloc (n, 160);
        assert (t && names);
        for (size_t i = 0; i < n; i++) {
            t [i] = *vdgx_ckpt_at (ck, i);
            if (k)
                assert (wan21_vae_diffusers_name (t [i].name, names [i], 160) == 0);
            else
                snprintf (names [i], 160, "%s", t [i].name);
            t [i].name = names [i];
        }
        snprintf (b, sizeof b, "%s/%s", ddir, k? "vae/diffusion_pytorch_model.safetensors"
                                                : "text_encoder/model.safetensors");
        assert (vdgx_safetensors_write (b, t, n, &err) == 0);
        free (t);
        free (names);
        vdgx_ckpt_destroy (&ck);
    }
}

//  A w x h PNG (RGB24, libavcodec's encoder) of a smooth gradient; malloc'd bytes.
static uint8_t *
s_png (int w, int h, int seed, size_t *size_p)
{
    const AVCodec *codec = avcodec_find_encoder (AV_CODEC_ID_PNG);
    AVCodecContext *c = codec? avcodec_alloc_context3 (codec): NULL;
    assert (c);
    c->width = w;
    c->height = h;
    c->pix_fmt = AV_PIX_FMT_RGB24;
    c->time_base = (AVRational) { 1, 25 };
    assert (avcodec_open2 (c, codec, NULL) == 0);
    AVFrame *f = av_frame_alloc ();
    assert (f);
    f->width = w;
    f->height = h;
    f->format = AV_PIX_FMT_RGB24;
    assert (av_frame_get_buffer (f, 0) == 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = f->data [0] + y * f->linesize [0] + 3 * x;
            p [0] = (uint8_t) (seed * 40 + 200 * x / w);
            p [1] = (uint8_t) (30 + 180 * y / h);
            p [2] = (uint8_t) (seed * 90 + 100 * (x + y) / (w + h));
        }
    AVPacket *pkt = av_packet_alloc ();
    assert (pkt && avcodec_send_frame (c, f) == 0 && avcodec_send_frame (c, NULL) == 0);
    assert (avcodec_receive_packet (c, pkt) == 0);
    uint8_t *bytes = (uint8_t *) malloc ((size_t) pkt->size);
    assert (bytes);
    memcpy (bytes, pkt->data, (size_t) pkt->size);
    *size_p = (size_t) pkt->size;
    av_packet_free (&pkt);
    av_frame_free (&f);
    avcodec_free_context (&c);
    return bytes;
}

static int
s_rm (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

typedef struct {
    int frames, width, height;
    double sum;                 //  checksum of every pixel
    bool range_ok;
    int text, denoise_steps, decode_steps;
    uint32_t last_step, steps;
    bool steps_in_order;
    double last_percent;
    bool percent_monotonic;
    atomic_int cancel;
    int cancel_at_step;         //  set the cancel flag at this denoising step (0 = never)
} s_sink_t;

static void
s_progress (void *ctx, const vdgx_engine_progress_t *p)
{
    s_sink_t *s = (s_sink_t *) ctx;
    if (p->percent + 1e-9 < s->last_percent)
        s->percent_monotonic = false;
    s->last_percent = p->percent;
    if (strcmp (p->phase, "encoding_text") == 0)
        s->text++;
    else
    if (strcmp (p->phase, "denoising") == 0 && p->step > 0) {
        if (p->step != s->last_step + 1)
            s->steps_in_order = false;
        s->last_step = p->step;
        s->steps = p->steps;
        s->denoise_steps++;
        if (s->cancel_at_step && (int) p->step == s->cancel_at_step)
            atomic_store (&s->cancel, 1);
    }
    else
    if (strcmp (p->phase, "decoding") == 0 && p->step > 0)
        s->decode_steps++;
}

static int
s_frame (void *ctx, const float *rgb, int width, int height)
{
    s_sink_t *s = (s_sink_t *) ctx;
    s->frames++;
    s->width = width;
    s->height = height;
    for (int i = 0; i < width * height * 3; i++) {
        if (!(rgb [i] >= -1.f && rgb [i] <= 1.f))
            s->range_ok = false;
        s->sum += rgb [i] * (double) ((i % 97) + 1);
    }
    return 0;
}

static void
s_sink_init (s_sink_t *s)
{
    memset (s, 0, sizeof *s);
    s->range_ok = s->steps_in_order = s->percent_monotonic = true;
    atomic_init (&s->cancel, 0);
}

static vdgx_engine_io_t
s_io (s_sink_t *s)
{
    vdgx_engine_io_t io = { .ctx = s, .progress = s_progress, .frame = s_frame, .cancel = &s->cancel };
    return io;
}

static void
s_req (vdgx_genreq_t *req, const char *prompt)
{
    vdgx_genreq_init (req);
    snprintf (req->model, sizeof req->model, "wan21-tiny");
    req->prompt = strdup (prompt);
}

static void
s_expect_bad (vdgx_engine_t *e, const vdgx_engine_class_t *cls, vdgx_genreq_t *req, const char *field)
{
    vdgx_error_t err;
    memset (&err, 0, sizeof err);
    int rc = cls->validate (e, req, &err);
    if (rc == 0 || strcmp (err.field, field) != 0)
        printf ("expected a bad %s, got rc %d field '%s' (%s)\n", field, rc, err.field, err.message);
    assert (rc == -1 && strcmp (err.field, field) == 0 && strcmp (err.code, "bad_request") == 0);
    assert (strlen (err.message) > 10);
    vdgx_genreq_clear (req);
}

void
wan21_engine_test (bool verbose)
{
    printf (" * wan21_engine: ");
    assert (wan21_engine_frames_for (5.0, 16, 81) == 81);
    assert (wan21_engine_frames_for (1.0, 16, 81) == 17);
    assert (wan21_engine_frames_for (2.6, 16, 81) == 41);
    assert (wan21_engine_frames_for (0.1, 16, 81) == 1);
    assert (wan21_engine_frames_for (100.0, 16, 81) == 81);
    assert (wan21_engine_frames_for (100.0, 16, 33) == 33);
    assert (wan21_engine_frames_for (-3.0, 16, 81) == 1);

    char dir [] = "/tmp/vdgx-wan21-engine-XXXXXX";
    assert (mkdtemp (dir));
    char *err = NULL;
    int rc = wan21_tiny_write (dir, 7, &err);
    if (rc)
        printf ("tiny: %s\n", err);
    assert (rc == 0);

    const vdgx_engine_class_t *tiny = &vdgx_wan21_tiny_engine_class, *full = &vdgx_wan21_engine_class;
    vdgx_engine_config_t cfg = { .model = "wan21-tiny", .weights_dir = dir, .device = "cpu",
                                 .precision = NULL, .threads = 2 };
    vdgx_engine_t *e = NULL;
    assert (tiny->create (&e, &cfg, &err) == VDGX_ENGINE_OK && e);
    assert (strcmp (tiny->precisions (e) [0], "fp32") == 0);

    //  A 1.3B service refuses the tiny weights before reading them.
    vdgx_engine_config_t c13 = { .model = "wan21-1.3b", .weights_dir = dir, .device = "cpu" };
    vdgx_engine_t *e13 = NULL;
    assert (full->create (&e13, &c13, &err) == VDGX_ENGINE_ERROR && !e13 && err && strstr (err, "1.3B"));
    free (err), err = NULL;
    //  Without weights yet, the service name decides: 1.3B limits and memory estimates.
    c13.weights_dir = "/nonexistent/wan";
    assert (full->create (&e13, &c13, &err) == VDGX_ENGINE_OK);
    uint64_t m32 = full->memory_estimate (e13, "fp32"), m16 = full->memory_estimate (e13, "bf16"),
             m8 = full->memory_estimate (e13, "fp8"), m4 = full->memory_estimate (e13, "fp4");
    if (verbose)
        printf ("\n   1.3B estimates on cpu: fp32 %.1f GB, bf16 %.1f GB, fp8 %.1f GB, fp4 %.1f GB\n",
                m32 / 1e9, m16 / 1e9, m8 / 1e9, m4 / 1e9);
    assert (m32 > m16 && m16 > m8 && m8 >= m4 && m4 > 1000000000ull && m32 < 200000000000ull);
    vdgx_genreq_t req;
    s_req (&req, "a cat");
    req.width = 1280, req.height = 720;
    s_expect_bad (e13, full, &req, "width");
    s_req (&req, "a cat");
    vdgx_error_t verr;
    memset (&verr, 0, sizeof verr);
    assert (full->validate (e13, &req, &verr) == 0);
    assert (req.width == 832 && req.height == 480 && req.frames == 81 && req.fps == 16 && req.steps == 50);
    vdgx_genreq_clear (&req);
    vdgx_engine_t *load_fail = e13;
    s_sink_t sink;
    s_sink_init (&sink);
    vdgx_engine_io_t io = s_io (&sink);
    assert (full->load (load_fail, &io, &err) == VDGX_ENGINE_ERROR && err && strstr (err, "/nonexistent/wan"));
    free (err), err = NULL;
    full->destroy (&e13);
    assert (!e13);
    vdgx_engine_config_t c14 = { .model = "wan21-14b", .weights_dir = "/nonexistent/wan", .device = "cpu" };
    vdgx_engine_t *e14 = NULL;
    assert (full->create (&e14, &c14, &err) == VDGX_ENGINE_OK);
    assert (full->memory_estimate (e14, "bf16") > m16);
    s_req (&req, "a cat");
    req.width = 720, req.height = 1280;
    memset (&verr, 0, sizeof verr);
    assert (full->validate (e14, &req, &verr) == 0 && req.frames == 81);
    vdgx_genreq_clear (&req);
    full->destroy (&e14);
    vdgx_engine_config_t cbad = { .model = "wan21-7b", .weights_dir = dir, .device = "cpu" };
    assert (full->create (&e14, &cbad, &err) == VDGX_ENGINE_ERROR && err);
    free (err), err = NULL;
    cbad.model = "wan21-tiny", cbad.precision = "fp7";
    assert (tiny->create (&e14, &cbad, &err) == VDGX_ENGINE_ERROR && err && strstr (err, "fp7"));
    free (err), err = NULL;

    //  Validation of the tiny service: defaults, then every field's limits.
    s_req (&req, "a red car in the rain");
    memset (&verr, 0, sizeof verr);
    assert (tiny->validate (e, &req, &verr) == 0);
    assert (req.width == 64 && req.height == 48 && req.frames == 9 && req.fps == 16 && req.steps == 8);
    assert (req.has_guidance && req.guidance == 5.0 && req.has_shift && req.shift == 5.0);
    assert (strcmp (req.sampler, "unipc") == 0 && req.has_seed);
    vdgx_genreq_clear (&req);
    s_req (&req, "x"); req.width = 40; req.height = 48; s_expect_bad (e, tiny, &req, "width");
    s_req (&req, "x"); req.width = 64; req.height = 272; s_expect_bad (e, tiny, &req, "height");
    s_req (&req, "x"); req.width = 64; s_expect_bad (e, tiny, &req, "height");
    s_req (&req, "x"); req.frames = 10; s_expect_bad (e, tiny, &req, "frames");
    s_req (&req, "x"); req.frames = 37; s_expect_bad (e, tiny, &req, "frames");
    s_req (&req, "x"); req.steps = 101; s_expect_bad (e, tiny, &req, "steps");
    s_req (&req, "x"); snprintf (req.sampler, sizeof req.sampler, "ddim"); s_expect_bad (e, tiny, &req, "sampler");
    s_req (&req, "x"); req.has_guidance = true; req.guidance = -1; s_expect_bad (e, tiny, &req, "guidance");
    s_req (&req, "x"); req.has_shift = true; req.shift = 0; s_expect_bad (e, tiny, &req, "shift");
    s_req (&req, "x"); req.fps = 61; s_expect_bad (e, tiny, &req, "fps");
    s_req (&req, "x"); req.has_seconds = true; req.seconds = 0; s_expect_bad (e, tiny, &req, "seconds");
    s_req (&req, "");
    s_expect_bad (e, tiny, &req, "prompt");
    s_req (&req, "x");
    req.has_seconds = true, req.seconds = 1.0, req.fps = 8;
    memset (&verr, 0, sizeof verr);
    assert (tiny->validate (e, &req, &verr) == 0 && req.frames == 9);
    vdgx_genreq_clear (&req);

    //  Load and run a job: 32x32, 5 frames, 3 steps.
    s_sink_init (&sink);
    io = s_io (&sink);
    rc = tiny->load (e, &io, &err);
    if (rc)
        printf ("load: %s\n", err);
    assert (rc == VDGX_ENGINE_OK);
    uint64_t loaded_estimate = tiny->memory_estimate (e, NULL);
    assert (loaded_estimate > 0 && loaded_estimate < 1000000000ull);
    double sums [3];
    for (int run = 0; run < 3; run++) {
        s_req (&req, "a red car in the rain at night");
        req.width = 32, req.height = 32, req.frames = 5, req.steps = 3;
        req.has_seed = true, req.seed = run == 2? 2: 1;
        if (run == 1) {
            free (req.negative_prompt);
            req.negative_prompt = NULL;         //  the official default negative prompt
        }
        memset (&verr, 0, sizeof verr);
        assert (tiny->validate (e, &req, &verr) == 0);
        s_sink_init (&sink);
        io = s_io (&sink);
        vdgx_engine_output_t out;
        memset (&out, 0, sizeof out);
        rc = tiny->generate (e, &req, &io, &out, &err);
        if (rc)
            printf ("generate: %s\n", err);
        assert (rc == VDGX_ENGINE_OK);
        assert (sink.frames == 5 && sink.width == 32 && sink.height == 32 && sink.range_ok);
        assert (sink.text >= 1 && sink.denoise_steps == 3 && sink.steps == 3 && sink.steps_in_order);
        assert (sink.decode_steps == 5 && sink.percent_monotonic);
        assert (out.frames == 5 && out.width == 32 && out.fps == 16 && out.seed == req.seed);
        assert (out.t_denoise > 0 && out.t_decode > 0);
        sums [run] = sink.sum;
        if (verbose)
            printf ("   run %d: text %.3fs denoise %.3fs decode %.3fs checksum %.6f\n", run,
                    out.t_text, out.t_denoise, out.t_decode, sink.sum);
        vdgx_genreq_clear (&req);
    }
    assert (sums [0] == sums [1]);          //  same seed, same video
    assert (sums [0] != sums [2]);          //  another seed, another video

    //  Cancellation at a step boundary.
    s_req (&req, "a boat");
    req.width = 32, req.height = 32, req.frames = 5, req.steps = 4;
    memset (&verr, 0, sizeof verr);
    assert (tiny->validate (e, &req, &verr) == 0);
    s_sink_init (&sink);
    sink.cancel_at_step = 2;
    io = s_io (&sink);
    vdgx_engine_output_t out;
    memset (&out, 0, sizeof out);
    assert (tiny->generate (e, &req, &io, &out, &err) == VDGX_ENGINE_CANCELLED);
    assert (sink.frames == 0 && sink.denoise_steps == 2);
    free (err), err = NULL;
    vdgx_genreq_clear (&req);

    tiny->unload (e);
    tiny->destroy (&e);
    assert (!e);

    //  The same model in the diffusers folder layout computes the same video.
    char ddir [300];
    snprintf (ddir, sizeof ddir, "%s/diffusers", dir);
    s_make_diffusers (dir, ddir);
    vdgx_engine_config_t cd = cfg;
    cd.weights_dir = ddir;
    assert (tiny->create (&e, &cd, &err) == VDGX_ENGINE_OK);
    s_sink_init (&sink);
    io = s_io (&sink);
    rc = tiny->load (e, &io, &err);
    if (rc)
        printf ("load diffusers: %s\n", err);
    assert (rc == VDGX_ENGINE_OK);
    s_req (&req, "a red car in the rain at night");
    req.width = 32, req.height = 32, req.frames = 5, req.steps = 3;
    req.has_seed = true, req.seed = 1;
    memset (&verr, 0, sizeof verr);
    assert (tiny->validate (e, &req, &verr) == 0);
    memset (&out, 0, sizeof out);
    assert (tiny->generate (e, &req, &io, &out, &err) == VDGX_ENGINE_OK);
    assert (sink.frames == 5 && sink.sum == sums [0]);
    vdgx_genreq_clear (&req);
    tiny->destroy (&e);

    //  The reduced-precision paths run the same job (DiT and umT5 weights quantized at load).
    const char *precs [] = { "bf16", "fp8", "fp4" };
    for (int i = 0; i < 3; i++) {
        vdgx_engine_config_t cp = cfg;
        cp.precision = precs [i];
        assert (tiny->create (&e, &cp, &err) == VDGX_ENGINE_OK);
        s_sink_init (&sink);
        io = s_io (&sink);
        rc = tiny->load (e, &io, &err);
        if (rc)
            printf ("load %s: %s\n", precs [i], err);
        assert (rc == VDGX_ENGINE_OK);
        s_req (&req, "a red car in the rain at night");
        req.width = 32, req.height = 32, req.frames = 1, req.steps = 2;
        memset (&verr, 0, sizeof verr);
        assert (tiny->validate (e, &req, &verr) == 0);
        memset (&out, 0, sizeof out);
        rc = tiny->generate (e, &req, &io, &out, &err);
        if (rc)
            printf ("generate %s: %s\n", precs [i], err);
        assert (rc == VDGX_ENGINE_OK && sink.frames == 1 && sink.range_ok);
        vdgx_genreq_clear (&req);
        tiny->destroy (&e);
    }
    //  A text-to-video model refuses an image, naming the field.
    assert (tiny->create (&e, &cfg, &err) == VDGX_ENGINE_OK);
    size_t png_size = 0, png2_size = 0;
    uint8_t *png = s_png (150, 100, 1, &png_size), *png2 = s_png (90, 120, 2, &png2_size);
    s_req (&req, "x");
    assert (vdgx_genreq_set_image (&req, "image", png, png_size) == 0);
    s_expect_bad (e, tiny, &req, "image");
    tiny->destroy (&e);
    //  A 14B text-to-video service refuses the image-to-video tiny weights and vice versa.
    char idir [300];
    snprintf (idir, sizeof idir, "%s/i2v", dir);
    rc = wan21_tiny_write_model (idir, "wan21-i2v-tiny", 7, &err);
    if (rc)
        printf ("tiny i2v: %s\n", err);
    assert (rc == 0);
    assert (wan21_tiny_write_model (idir, "wan21-huge", 7, &err) == -1 && err);
    free (err), err = NULL;
    vdgx_engine_config_t ci = { .model = "wan21-i2v-tiny", .weights_dir = dir, .device = "cpu", .threads = 2 };
    assert (full->create (&e, &ci, &err) == VDGX_ENGINE_ERROR && err && strstr (err, "image-to-video"));
    free (err), err = NULL;
    //  Without weights the image services have their limits and estimates (CLIP, encoder).
    vdgx_engine_config_t c480 = { .model = "wan21-i2v-14b-480p", .weights_dir = "/nonexistent/wan", .device = "cpu" };
    assert (full->create (&e14, &c480, &err) == VDGX_ENGINE_OK);
    vdgx_engine_config_t ct14 = { .model = "wan21-14b", .weights_dir = "/nonexistent/wan", .device = "cpu" };
    vdgx_engine_t *et14 = NULL;
    assert (full->create (&et14, &ct14, &err) == VDGX_ENGINE_OK);
    vdgx_engine_config_t c720 = c480;
    c720.model = "wan21-i2v-14b-720p";
    vdgx_engine_t *e720 = NULL;
    assert (full->create (&e720, &c720, &err) == VDGX_ENGINE_OK);
    uint64_t mi480 = full->memory_estimate (e14, "bf16"), mi720 = full->memory_estimate (e720, "bf16");
    uint64_t mt14 = full->memory_estimate (et14, "bf16");
    if (verbose)
        printf ("   14B bf16 estimates on cpu: t2v 720p %.1f GB, i2v 480p %.1f GB, i2v 720p %.1f GB\n",
                mt14 / 1e9, mi480 / 1e9, mi720 / 1e9);
    assert (mi720 > mt14 + 2000000000ull && mi720 > mi480);
    //  On a GPU (bf16 activations; create() opens no device).
    vdgx_engine_config_t cg = c720;
    cg.device = "cuda:0";
    vdgx_engine_t *eg = NULL;
    assert (full->create (&eg, &cg, &err) == VDGX_ENGINE_OK);
    uint64_t mg16 = full->memory_estimate (eg, "bf16"), mg8 = full->memory_estimate (eg, "fp8");
    if (verbose)
        printf ("   i2v 720p estimates on cuda: bf16 %.1f GB, fp8 %.1f GB\n", mg16 / 1e9, mg8 / 1e9);
    assert (mg16 > mg8 && mg16 < mi720);
    full->destroy (&eg);
    vdgx_limits_t lim;
    assert (full->limits (e14, &lim) == 0 && lim.images == 1 && lim.wh_max == 832);
    assert (full->limits (e720, &lim) == 0 && lim.images == 1 && lim.wh_max == 1280);
    s_req (&req, "x");
    s_expect_bad (e14, full, &req, "image");
    //  480p: 832x480 is the budget; a 150x100 image gives 768x512 (3:2 kept to 16 pixels).
    s_req (&req, "x");
    assert (vdgx_genreq_set_image (&req, "image", png, png_size) == 0);
    memset (&verr, 0, sizeof verr);
    assert (full->validate (e14, &req, &verr) == 0);
    assert (req.width == 768 && req.height == 512 && req.steps == 40 && req.frames == 81);
    assert (req.has_shift && req.shift == 3.0);     //  generate.py's i2v 480p default
    vdgx_genreq_clear (&req);
    s_req (&req, "x");
    assert (vdgx_genreq_set_image (&req, "image", png, png_size) == 0);
    assert (vdgx_genreq_set_image (&req, "last_image", png2, png2_size) == 0);
    s_expect_bad (e14, full, &req, "last_image");
    s_req (&req, "x");
    uint8_t junk [64];
    memcpy (junk, png, sizeof junk);        //  a PNG cut after 64 bytes
    assert (vdgx_genreq_set_image (&req, "image", junk, sizeof junk) == 0);
    s_expect_bad (e14, full, &req, "image");
    full->destroy (&e14);
    full->destroy (&et14);
    full->destroy (&e720);
    vdgx_engine_config_t cflf = c480;
    cflf.model = "wan21-flf2v-14b-720p";
    assert (full->create (&e14, &cflf, &err) == VDGX_ENGINE_OK);
    assert (full->limits (e14, &lim) == 0 && lim.images == 2);
    s_req (&req, "x");
    assert (vdgx_genreq_set_image (&req, "image", png, png_size) == 0);
    assert (vdgx_genreq_set_image (&req, "last_image", png2, png2_size) == 0);
    memset (&verr, 0, sizeof verr);
    assert (full->validate (e14, &req, &verr) == 0 && req.shift == 16.0 && req.steps == 50);
    vdgx_genreq_clear (&req);
    s_req (&req, "x");
    assert (vdgx_genreq_set_image (&req, "image", png, png_size) == 0);
    s_expect_bad (e14, full, &req, "last_image");
    full->destroy (&e14);

    //  The tiny image-to-video model: a real job from a PNG.
    ci.weights_dir = idir;
    assert (full->create (&e, &ci, &err) == VDGX_ENGINE_OK);
    assert (strcmp (full->precisions (e) [0], "fp32") == 0);
    s_sink_init (&sink);
    io = s_io (&sink);
    rc = full->load (e, &io, &err);
    if (rc)
        printf ("load i2v: %s\n", err);
    assert (rc == VDGX_ENGINE_OK);
    assert (full->memory_estimate (e, NULL) > 0 && full->memory_estimate (e, NULL) < 1000000000ull);
    double isum [2];
    for (int run = 0; run < 2; run++) {
        s_req (&req, "a red car in the rain at night");
        snprintf (req.model, sizeof req.model, "wan21-i2v-tiny");
        req.width = 64, req.height = 48, req.frames = 5, req.steps = 3;
        req.has_seed = true, req.seed = 1;
        if (run == 0)
            assert (vdgx_genreq_set_image (&req, "image", png, png_size) == 0);
        else
            assert (vdgx_genreq_set_image (&req, "image", png2, png2_size) == 0);
        memset (&verr, 0, sizeof verr);
        rc = full->validate (e, &req, &verr);
        if (rc)
            printf ("validate i2v: %s: %s\n", verr.field, verr.message);
        assert (rc == 0);
        //  64x48 budget: 150x100 -> 64x32 (sides rounded down to 16), 90x120 -> 48x64.
        assert (run == 0? req.width == 64 && req.height == 32: req.width == 48 && req.height == 64);
        s_sink_init (&sink);
        io = s_io (&sink);
        memset (&out, 0, sizeof out);
        rc = full->generate (e, &req, &io, &out, &err);
        if (rc)
            printf ("generate i2v: %s\n", err);
        assert (rc == VDGX_ENGINE_OK);
        assert (sink.frames == 5 && sink.width == (int) req.width && sink.height == (int) req.height);
        assert (sink.range_ok && sink.denoise_steps == 3 && sink.text >= 2);
        assert (out.width == req.width && out.height == req.height && out.frames == 5);
        isum [run] = sink.sum;
        if (verbose)
            printf ("   i2v run %d: %ux%u, image+text %.3fs denoise %.3fs decode %.3fs\n", run,
                    out.width, out.height, out.t_text, out.t_denoise, out.t_decode);
        vdgx_genreq_clear (&req);
    }
    assert (isum [0] != isum [1]);
    //  DPM++ runs the same loop (its numbers: vdgx-refcheck wan21 --part sampling).
    s_req (&req, "a red car in the rain at night");
    snprintf (req.model, sizeof req.model, "wan21-i2v-tiny");
    snprintf (req.sampler, sizeof req.sampler, "dpm++");
    req.frames = 5, req.steps = 2;
    assert (vdgx_genreq_set_image (&req, "image", png, png_size) == 0);
    memset (&verr, 0, sizeof verr);
    assert (full->validate (e, &req, &verr) == 0);
    s_sink_init (&sink);
    io = s_io (&sink);
    memset (&out, 0, sizeof out);
    assert (full->generate (e, &req, &io, &out, &err) == VDGX_ENGINE_OK);
    assert (sink.frames == 5 && sink.range_ok && sink.denoise_steps == 2);
    vdgx_genreq_clear (&req);
    full->unload (e);
    full->destroy (&e);

    //  First-last-frame (the FLF2V-14B layout, no official vectors: the path runs end to end,
    //  the last image of another size center-cropped as the official code does).
    char fdir [300];
    snprintf (fdir, sizeof fdir, "%s/flf2v", dir);
    assert (wan21_tiny_write_model (fdir, "wan21-flf2v-tiny", 7, &err) == 0);
    vdgx_engine_config_t cf = ci;
    cf.model = "wan21-flf2v-tiny";
    cf.weights_dir = fdir;
    assert (full->create (&e, &cf, &err) == VDGX_ENGINE_OK);
    s_sink_init (&sink);
    io = s_io (&sink);
    rc = full->load (e, &io, &err);
    if (rc)
        printf ("load flf2v: %s\n", err);
    assert (rc == VDGX_ENGINE_OK);
    s_req (&req, "x");
    snprintf (req.model, sizeof req.model, "wan21-flf2v-tiny");
    assert (vdgx_genreq_set_image (&req, "image", png, png_size) == 0);
    s_expect_bad (e, full, &req, "last_image");
    double fsum [2];
    for (int run = 0; run < 2; run++) {
        s_req (&req, "a red car in the rain at night");
        snprintf (req.model, sizeof req.model, "wan21-flf2v-tiny");
        req.width = 64, req.height = 48, req.frames = 9, req.steps = 2;
        req.has_seed = true, req.seed = 1;
        assert (vdgx_genreq_set_image (&req, "image", png, png_size) == 0);
        assert (vdgx_genreq_set_image (&req, "last_image", run? png: png2, run? png_size: png2_size) == 0);
        memset (&verr, 0, sizeof verr);
        assert (full->validate (e, &req, &verr) == 0 && req.width == 64 && req.height == 32);
        s_sink_init (&sink);
        io = s_io (&sink);
        memset (&out, 0, sizeof out);
        rc = full->generate (e, &req, &io, &out, &err);
        if (rc)
            printf ("generate flf2v: %s\n", err);
        assert (rc == VDGX_ENGINE_OK && sink.frames == 9 && sink.width == 64 && sink.height == 32);
        fsum [run] = sink.sum;
        vdgx_genreq_clear (&req);
    }
    assert (fsum [0] != fsum [1]);          //  the last image matters
    full->destroy (&e);
    free (png);
    free (png2);

    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    assert (access (dir, F_OK) != 0);
    printf ("OK\n");
}
