/*  vdgx-bench-wan21 - whole-video time of Wan 2.1 text-to-video: text encoding (umT5-XXL,
    prompt + negative prompt), denoising (DiT, CFG: two forwards per step), VAE decode and
    H.264 encode, with peak memory, per weight precision, with full-width random weights built
    in memory (timing does not depend on weight values).

    vdgx-bench-wan21 [--model 1.3b|14b] [--device cpu|cuda[:N]] [--precisions bf16,fp8,fp4]
                     [--width 832] [--height 480] [--frames 81] [--steps 50]
                     [--blocks N] [--t5-layers N] [--t5-tokens 128] [--t5-vocab 4096]
                     [--target 832x480x81] [--target-steps 50] [--peak-tflops X] [--no-encode]
                     [--decode-once]

    A reduced run (fewer DiT blocks / T5 layers / steps, a smaller video) is extrapolated to the
    target: DiT by FLOPs at the achieved rate per block (the quadratic attention term included),
    T5 per layer (24), VAE decode and encode per output pixel-frame. The floor is the target's
    FLOPs at --peak-tflops (the device's dense peak for the weight format).
    --decode-once times the VAE decode and the encode for the first precision only and reuses
    them for the others (the VAE runs in BF16 whatever the DiT's weight format).
    Published reference: 261 s for the 1.3B at 832x480x81, 50 steps, on one RTX 4090 with
    model offload (Wan 2.1 README).
*/
#include "wan21_dit.h"
#include "vdgx_rng.h"
#include "vdgx_t5.h"
#include "wan21_vae.h"
#include "vdgx_ckpt.h"
#ifndef VDGX_BENCH_NO_VIDEO
#include "vdgx_video.h"
#else
//  Built without the encoder (the GPU bundle: its machine has no libavcodec). The encode is then
//  not timed here; vdgx-bench-video times it on the host that has one.
typedef struct _vdgx_video_t vdgx_video_t;
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

//  ---------------------------------------------------------------------------------------
//  FLOP counts (multiply-add = 2)

//  DiT: one forward over L tokens (same terms as vdgx-bench-dit), per block.
static double
s_dit_block_flops (const wan21_dit_config_t *c, double L)
{
    double d = c->dim, f = c->ffn_dim, t = c->text_len;
    return 2.0 * L * (6.0 * d * d + 2.0 * d * f) + 4.0 * L * L * d + 4.0 * L * t * d;
}

//  VAE decode of a latent T x h x w with base width d (every conv and the middle attention).
static double
s_vae_flops (double d, double T, double h, double w)
{
    double F = 1 + 4 * (T - 1), T1 = 1 + 2 * (T - 1);
    double c4 = 4 * d, c2 = 2 * d, px = h * w, mac = 0;
    mac += 27 * 16 * c4 * px * T;                                   //  conv1
    mac += 4 * 27 * c4 * c4 * px * T;                               //  middle res blocks
    mac += (4 * c4 * c4 * px + 2 * px * px * c4) * T;               //  middle attention
    mac += 6 * 27 * c4 * c4 * px * T;                               //  stage 0
    mac += 3 * c4 * 2 * c4 * px * (T - 1) + 9 * c4 * c2 * 4 * px * T1;     //  upsample3d
    mac += (27 * c2 * c4 + c2 * c4 + 5 * 27 * c4 * c4) * 4 * px * T1;       //  stage 1
    mac += 3 * c4 * 2 * c4 * 4 * px * (T1 - 1) / 2 + 9 * c4 * c2 * 16 * px * F;
    mac += 6 * 27 * c2 * c2 * 16 * px * F;                          //  stage 2
    mac += 9 * c2 * d * 64 * px * F;                                //  upsample2d
    mac += (6 * 27 * d * d + 27 * d * 3) * 64 * px * F;             //  stage 3 + head
    return 2 * mac;
}

//  umT5 encoder, n tokens: q,k,v,o and the gated FFN per layer, plus attention.
static double
s_t5_layer_flops (double dim, double ffn, double n)
{
    return 2.0 * n * (4 * dim * dim + 3 * dim * ffn) + 4.0 * n * n * dim;
}

//  ---------------------------------------------------------------------------------------
//  A random umT5 encoder as an in-memory safetensors file (official names, BF16).

typedef struct {
    char *buf;
    size_t size;
} s_blob_t;

static int
s_t5_blob (int layers, int dim, int ffn, int heads, int vocab, s_blob_t *blob)
{
    typedef struct { char name [96]; int64_t r, c; } s_t;
    int count = 2 + 10 * layers;
    s_t *t = calloc ((size_t) count, sizeof *t);
    if (!t)
        return -1;
    int k = 0;
    snprintf (t [k].name, 96, "token_embedding.weight"), t [k].r = vocab, t [k++].c = dim;
    for (int i = 0; i < layers; i++) {
        const char *qkvo = "qkvo";
        snprintf (t [k].name, 96, "blocks.%d.norm1.weight", i), t [k].r = dim, t [k++].c = 0;
        for (int j = 0; j < 4; j++)
            snprintf (t [k].name, 96, "blocks.%d.attn.%c.weight", i, qkvo [j]), t [k].r = dim, t [k++].c = dim;
        snprintf (t [k].name, 96, "blocks.%d.norm2.weight", i), t [k].r = dim, t [k++].c = 0;
        snprintf (t [k].name, 96, "blocks.%d.ffn.gate.0.weight", i), t [k].r = ffn, t [k++].c = dim;
        snprintf (t [k].name, 96, "blocks.%d.ffn.fc1.weight", i), t [k].r = ffn, t [k++].c = dim;
        snprintf (t [k].name, 96, "blocks.%d.ffn.fc2.weight", i), t [k].r = dim, t [k++].c = ffn;
        snprintf (t [k].name, 96, "blocks.%d.pos_embedding.embedding.weight", i), t [k].r = 32, t [k++].c = heads;
    }
    snprintf (t [k].name, 96, "norm.weight"), t [k].r = dim, t [k++].c = 0;
    count = k;
    //  Header JSON, then the data; the header is padded to 8 bytes.
    size_t hcap = (size_t) count * 160 + 16, off = 0;
    char *h = malloc (hcap);
    if (!h) {
        free (t);
        return -1;
    }
    size_t hl = (size_t) snprintf (h, hcap, "{");
    for (int i = 0; i < count; i++) {
        size_t n = (size_t) t [i].r * (size_t) (t [i].c? t [i].c: 1) * 2;
        if (t [i].c)
            hl += (size_t) snprintf (h + hl, hcap - hl, "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%lld,%lld],"
                                     "\"data_offsets\":[%zu,%zu]}", i? ",": "", t [i].name,
                                     (long long) t [i].r, (long long) t [i].c, off, off + n);
        else
            hl += (size_t) snprintf (h + hl, hcap - hl, "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%lld],"
                                     "\"data_offsets\":[%zu,%zu]}", i? ",": "", t [i].name,
                                     (long long) t [i].r, off, off + n);
        off += n;
    }
    hl += (size_t) snprintf (h + hl, hcap - hl, "}");
    while (hl % 8)
        h [hl++] = ' ';
    blob->size = 8 + hl + off;
    blob->buf = malloc (blob->size);
    if (!blob->buf) {
        free (h);
        free (t);
        return -1;
    }
    uint64_t hl64 = hl;
    for (int i = 0; i < 8; i++)
        blob->buf [i] = (char) (hl64 >> (8 * i));
    memcpy (blob->buf + 8, h, hl);
    uint16_t *data = (uint16_t *) (blob->buf + 8 + hl);
    size_t n = off / 2;
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        //  Uniform +-0.02 (norm weights too: values do not change the work).
        data [i] = vdgx_f32_to_bf16 ((float) ((double) (s >> 40) / 16777216.0 * 0.04 - 0.02));
    }
    free (h);
    free (t);
    return 0;
}

//  ---------------------------------------------------------------------------------------

typedef struct {
    vdgx_video_t *video;
    double t_encode;
    float *rgb;
    int frames;
} s_sink_t;

static int
s_on_frame (void *arg, int index, const float *chw, int width, int height)
{
    (void) index;
    s_sink_t *s = (s_sink_t *) arg;
    s->frames++;
    if (!s->video)
        return 0;
    size_t hw = (size_t) width * (size_t) height;
    double t0 = s_now ();
    for (size_t i = 0; i < hw; i++) {
        s->rgb [3 * i] = chw [i];
        s->rgb [3 * i + 1] = chw [hw + i];
        s->rgb [3 * i + 2] = chw [2 * hw + i];
    }
#ifndef VDGX_BENCH_NO_VIDEO
    int rc = vdgx_video_push_float (s->video, s->rgb, width, height);
#else
    int rc = -1;
#endif
    s->t_encode += s_now () - t0;
    return rc;
}

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: vdgx-bench-wan21 [--model 1.3b|14b] [--device cpu|cuda[:N]] [--precisions bf16,fp8,fp4]\n"
        "       [--width W] [--height H] [--frames F] [--steps N] [--blocks N] [--t5-layers N]\n"
        "       [--t5-tokens N] [--t5-vocab N] [--target WxHxF] [--target-steps N]\n"
        "       [--peak-tflops X] [--no-encode] [--decode-once]\n");
}

static double
s_gb (uint64_t bytes)
{
    return bytes / 1073741824.0;
}

int
main (int argc, char *argv [])
{
    const char *model = "1.3b", *device = "cpu", *precisions = "bf16,fp8,fp4";
    int width = 832, height = 480, frames = 81, steps = 50, blocks = 0, t5_layers = 24;
    int t5_tokens = 128, t5_vocab = 4096, tw = 832, th = 480, tf = 81, tsteps = 50;
    double peak = 0;
    bool encode = true, decode_once = false, have_decode = false;
    double once_decode = 0, once_encode = 0;
    int once_frames = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i], *v = i + 1 < argc? argv [i + 1]: NULL;
        if (strcmp (a, "--no-encode") == 0) {
            encode = false;
            continue;
        }
        if (strcmp (a, "--decode-once") == 0) {
            decode_once = true;
            continue;
        }
        if (!v) {
            s_usage ();
            return 2;
        }
        if (strcmp (a, "--model") == 0) model = v;
        else if (strcmp (a, "--device") == 0) device = v;
        else if (strcmp (a, "--precisions") == 0) precisions = v;
        else if (strcmp (a, "--width") == 0) width = atoi (v);
        else if (strcmp (a, "--height") == 0) height = atoi (v);
        else if (strcmp (a, "--frames") == 0) frames = atoi (v);
        else if (strcmp (a, "--steps") == 0) steps = atoi (v);
        else if (strcmp (a, "--blocks") == 0) blocks = atoi (v);
        else if (strcmp (a, "--t5-layers") == 0) t5_layers = atoi (v);
        else if (strcmp (a, "--t5-tokens") == 0) t5_tokens = atoi (v);
        else if (strcmp (a, "--t5-vocab") == 0) t5_vocab = atoi (v);
        else if (strcmp (a, "--target-steps") == 0) tsteps = atoi (v);
        else if (strcmp (a, "--peak-tflops") == 0) peak = atof (v);
        else if (strcmp (a, "--target") == 0) {
            if (sscanf (v, "%dx%dx%d", &tw, &th, &tf) != 3) {
                s_usage ();
                return 2;
            }
        }
        else {
            s_usage ();
            return 2;
        }
        i++;
    }
#ifdef VDGX_BENCH_NO_VIDEO
    if (encode)
        printf ("vdgx-bench-wan21: built without the video encoder (VDGX_BENCH_WAN21_ENCODE=OFF): "
                "encode not timed; vdgx-bench-video times it\n");
    encode = false;
#endif
    wan21_dit_config_t cfg;
    if (wan21_dit_config_preset (model, &cfg)) {
        fprintf (stderr, "vdgx-bench-wan21: unknown model '%s'\n", model);
        return 2;
    }
    const int full_blocks = cfg.num_layers;
    if (blocks <= 0 || blocks > full_blocks)
        blocks = full_blocks;
    if (t5_layers < 1 || t5_layers > 24)
        t5_layers = 24;
    if (steps < 1 || tsteps < 1 || t5_tokens < 1 || t5_tokens > 512 || t5_vocab < 2)
        return s_usage (), 2;
    int64_t shape [4], tshape [4];
    char *err = NULL;
    if (wan21_latent_shape (width, height, frames, shape, &err) || wan21_latent_shape (tw, th, tf, tshape, &err)) {
        fprintf (stderr, "vdgx-bench-wan21: %s\n", err);
        return 2;
    }
    double L = (double) (shape [1] * (shape [2] / 2) * (shape [3] / 2));
    double TL = (double) (tshape [1] * (tshape [2] / 2) * (tshape [3] / 2));
    const int T5D = 4096, T5F = 10240, T5H = 64;
    //  Target work: 2 forwards per step, all blocks; two prompts through 24 layers; the VAE.
    double dit_target = 2.0 * tsteps * full_blocks * s_dit_block_flops (&cfg, TL);
    double t5_target = 2.0 * 24 * s_t5_layer_flops (T5D, T5F, t5_tokens);
    double vae_target = s_vae_flops (96, (double) tshape [1], (double) tshape [2], (double) tshape [3]);
    double vae_run = s_vae_flops (96, (double) shape [1], (double) shape [2], (double) shape [3]);
    double pixel_ratio = ((double) tw * th * tf) / ((double) width * height * frames);
    bool cpu = strncmp (device, "cpu", 3) == 0;
    printf ("vdgx-bench-wan21: Wan 2.1 %s on %s; run %dx%dx%d, %d steps, %d/%d DiT blocks, %d/24 T5 layers, "
            "%d-token prompts; target %dx%dx%d, %d steps (%.0f tokens)\n", model, device, width, height,
            frames, steps, blocks, full_blocks, t5_layers, t5_tokens, tw, th, tf, tsteps, TL);
    printf ("target work: DiT %.2f PFLOP, umT5 %.3f TFLOP, VAE decode %.2f TFLOP\n", dit_target / 1e15,
            t5_target / 1e12, vae_target / 1e12);

    char list [128];
    snprintf (list, sizeof list, "%s", precisions);
    int failures = 0;
    for (char *save = NULL, *p = strtok_r (list, ",", &save); p; p = strtok_r (NULL, ",", &save)) {
        vdgx_backend_t *b = vdgx_backend_new (device, cpu || strcmp (p, "fp32") == 0? VDGX_DTYPE_F32
                                              : VDGX_DTYPE_BF16, &err);
        if (!b) {
            fprintf (stderr, "vdgx-bench-wan21: device %s: %s\n", device, err? err: "unavailable");
            return 1;
        }
        printf ("\n[%s] building random weights...\n", p);
        fflush (stdout);
        //  umT5: fp32 -> f32, bf16 -> bf16, fp8/fp4 -> fp8 linears (as the engine loads it).
        vdgx_wfmt_t t5fmt = strcmp (p, "fp32") == 0? VDGX_WFMT_F32: strcmp (p, "bf16") == 0?
                            VDGX_WFMT_BF16: VDGX_WFMT_FP8_E4M3;
        s_blob_t blob = { 0 };
        vdgx_t5_t *t5 = NULL;
        wan21_dit_t *dit = NULL;
        wan21_vae_t *vae = NULL;
        float *ctx = NULL, *neg = NULL, *latent = NULL;
        s_sink_t sink = { 0 };
#ifndef VDGX_BENCH_NO_VIDEO
        char path [128] = "";
#endif
        double t_text = 0, t_denoise = 0, t_decode = 0;
        int ok = 0;
        if (s_t5_blob (t5_layers, T5D, T5F, T5H, t5_vocab, &blob) == 0) {
            vdgx_ckpt_t *ck = vdgx_ckpt_open_buffer (blob.buf, blob.size, &err);
            if (ck)
                t5 = vdgx_t5_new_from_ckpt (&ck, b, t5fmt, &err);
        }
        wan21_dit_config_t run_cfg = cfg;
        run_cfg.num_layers = blocks;
        if (t5)
            dit = wan21_dit_new_random (b, &run_cfg, p, 1, &err);
        if (dit)
            vae = wan21_vae_new_random (b, 96, 16, 1, &err);
        if (!vae) {
            printf ("[%s] cannot build the model: %s\n", p, err? err: "?");
            failures++;
            goto next;
        }
        printf ("[%s] weights on the device: T5 %.2f GB (%d layers), VAE %.3f GB; peak so far %.2f GB\n",
                p, s_gb (vdgx_t5_weight_bytes (t5)), t5_layers, s_gb (wan21_vae_weight_bytes (vae)),
                s_gb (vdgx_backend_peak_bytes (b)));
        //  Text: the prompt and the negative prompt, t5_tokens real tokens each.
        int32_t *ids = malloc (sizeof (int32_t) * 512);
        for (int i = 0; i < 512; i++)
            ids [i] = 3 + (i * 37) % (t5_vocab - 3);
        double t0 = s_now ();
        for (int k = 0; k < 2; k++) {
            vdgx_tensor_t out = { 0 };
            if (vdgx_t5_encode (t5, ids + k, t5_tokens, cfg.text_len, &out)) {
                printf ("[%s] text encoder: %s\n", p, vdgx_t5_error (t5));
                free (ids);
                failures++;
                goto next;
            }
            float *host = malloc ((size_t) vdgx_tensor_numel (&out) * sizeof (float));
            vdgx_tensor_to_f32 (b, &out, host);
            vdgx_tensor_release (b, &out);
            if (k == 0)
                ctx = host;
            else
                neg = host;
        }
        t_text = s_now () - t0;
        free (ids);
        //  Denoising with CFG.
        wan21_dit_sample_args_t a = {
            .context = ctx, .context_len = t5_tokens, .context_null = neg, .context_null_len = t5_tokens,
            .width = width, .height = height, .frames = frames, .steps = steps, .guidance = 5.0,
            .shift = 5.0, .sampler = VDGX_SOLVER_UNIPC, .seed = 7,
        };
        int64_t ls [4];
        t0 = s_now ();
        if (wan21_dit_sample (dit, &a, &latent, ls, &err)) {
            printf ("[%s] denoising: %s\n", p, err? err: "?");
            failures++;
            goto next;
        }
        t_denoise = s_now () - t0;
        //  Decode, each frame streamed into the encoder. The VAE runs in BF16 whatever the DiT's
        //  weights are, so --decode-once times it for the first precision only.
        if (decode_once && have_decode) {
            t_decode = once_decode;
            sink.t_encode = once_encode;
            sink.frames = once_frames;
            printf ("[%s] decode and encode: times of the first precision (--decode-once)\n", p);
            ok = 1;
            goto next;
        }
#ifndef VDGX_BENCH_NO_VIDEO
        if (encode) {
            snprintf (path, sizeof path, "/tmp/vdgx-bench-wan21-%d.mp4", (int) getpid ());
            vdgx_video_options_t vo;
            vdgx_video_options_init (&vo);
            vo.fps = 16;
            vo.thumbnail = false;
            vo.sprite_count = 0;
            sink.video = vdgx_video_new (path, &vo, &err);
            if (!sink.video)
                printf ("[%s] no video encoder: %s (encode not timed)\n", p, err? err: "?");
        }
#endif
        sink.rgb = malloc ((size_t) width * height * 3 * sizeof (float));
        t0 = s_now ();
        if (wan21_vae_decode (vae, latent, ls [1], ls [2], ls [3], NULL, s_on_frame, &sink, &err)) {
            printf ("[%s] decode: %s\n", p, err? err: "?");
            failures++;
            goto next;
        }
        t_decode = s_now () - t0 - sink.t_encode;
#ifndef VDGX_BENCH_NO_VIDEO
        if (sink.video) {
            t0 = s_now ();
            if (vdgx_video_finish (sink.video) == 0)
                sink.t_encode += s_now () - t0;
            unlink (path);
        }
#endif
        ok = 1;
        have_decode = true;
        once_decode = t_decode;
        once_encode = sink.t_encode;
        once_frames = sink.frames;
next:
        if (ok) {
            struct rusage ru;
            getrusage (RUSAGE_SELF, &ru);
            double e_text = t_text * 24.0 / t5_layers * 1.0;
            double per_block_step = t_denoise / steps / blocks;
            double e_denoise = per_block_step * full_blocks * tsteps
                             * s_dit_block_flops (&cfg, TL) / s_dit_block_flops (&cfg, L);
            double e_decode = t_decode * vae_target / vae_run;
            double e_encode = sink.t_encode * pixel_ratio;
            double e_total = e_text + e_denoise + e_decode + e_encode;
            double rate = 2.0 * steps * blocks * s_dit_block_flops (&cfg, L) / t_denoise;
            printf ("[%s] measured: text %.3f s, denoise %.3f s (%.3f s/step, DiT %.1f GFLOP/s), "
                    "decode %.3f s (%d frames, %.1f GFLOP/s), encode %.3f s\n", p, t_text, t_denoise,
                    t_denoise / steps, rate / 1e9, t_decode, sink.frames, vae_run / t_decode / 1e9,
                    sink.t_encode);
            printf ("[%s] peak memory: backend %.2f GB, process RSS %.2f GB\n", p,
                    s_gb (vdgx_backend_peak_bytes (b)), ru.ru_maxrss / 1048576.0);
            printf ("[%s] extrapolated to %dx%dx%d, %d steps, %d blocks: text %.2f s + denoise %.1f s + "
                    "decode %.1f s + encode %.1f s = %.1f s (authors: 261 s on an RTX 4090 with offload)\n",
                    p, tw, th, tf, tsteps, full_blocks, e_text, e_denoise, e_decode, e_encode, e_total);
            if (peak > 0)
                printf ("[%s] floor at %.0f TFLOP/s: %.1f s of compute (DiT %.1f s, VAE %.2f s); "
                        "we are %.1fx above it\n", p, peak, (dit_target + t5_target + vae_target) / peak / 1e12,
                        dit_target / peak / 1e12, vae_target / peak / 1e12,
                        e_total / ((dit_target + t5_target + vae_target) / peak / 1e12));
        }
        free (err);
        err = NULL;
        free (ctx);
        free (neg);
        free (latent);
        free (sink.rgb);
#ifndef VDGX_BENCH_NO_VIDEO
        vdgx_video_destroy (&sink.video);
#endif
        wan21_vae_destroy (&vae);
        wan21_dit_destroy (&dit);
        vdgx_t5_destroy (&t5);
        free (blob.buf);
        vdgx_backend_destroy (&b);
    }
    return failures? 1: 0;
}
