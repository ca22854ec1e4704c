/*  refcheck_ltx2_dit.c - the LTX-2 (part dit of `vdgx-refcheck ltx2`) and LTX-2.3 (part dit of
    `vdgx-refcheck ltx23`) two-stream DiT against the official code's outputs: one LTXModel
    forward of batch 2 (video + audio, per-token timesteps) from the tiny checkpoint, whose
    configuration comes from its __metadata__ as for a real file. Compared: the positions
    (recomputed from the latent shapes), the RoPE tables (float32 and, for LTX-2, the bf16
    pipeline's), the preprocessor outputs, every stored block output and block-0 internals,
    the velocities; for LTX-2 also the code-default av_ca_timestep_scale_multiplier = 1 run.
*/
#include "refcheck.h"
#include "ltx2_dit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VEC "vectors_dit.safetensors"

typedef struct {
    vdgx_refcheck_t *rc;
    const char *prefix;         //  "dit" / "dit_avca1"
} s_ctx_t;

static void
s_fail (vdgx_refcheck_t *rc, const char *label, const char *why)
{
    printf ("  FAIL %-44s %s\n", label, why);
    rc->checks++;
    rc->failures++;
}

static void
s_tap (void *arg, const char *name, const vdgx_tensor_t *t)
{
    s_ctx_t *ctx = (s_ctx_t *) arg;
    char stored [160];
    snprintf (stored, sizeof (stored), "%s.%s", ctx->prefix, name);
    vdgx_ckpt_t *vec = vdgx_refcheck_file (ctx->rc, S_VEC);
    const vdgx_ckpt_tensor_t *ref = vec? vdgx_ckpt_find (vec, stored): NULL;
    if (!ref)
        return;                 //  not every intermediate is stored
    const int64_t n = vdgx_tensor_numel (t);
    if (ref->ndim == 3 && n == ref->shape [0] * ref->shape [2] && ref->shape [1] > 1) {
        //  per-sample values (every token of a sample has one timestep) against the stored
        //  per-token [B, N, K]: each sample's row repeated over its tokens
        const int64_t B = ref->shape [0], N = ref->shape [1], K = ref->shape [2];
        float *got = (float *) malloc (sizeof (float) * (size_t) n);
        float *rep = (float *) malloc (sizeof (float) * (size_t) (B * N * K));
        if (got && rep && vdgx_tensor_to_f32 (ctx->rc->backend, t, got) == 0) {
            for (int64_t i = 0; i < B * N; i++)
                memcpy (rep + i * K, got + (i / N) * K, sizeof (float) * (size_t) K);
            char label [200];
            snprintf (label, sizeof (label), "%s (per sample)", stored);
            vdgx_refcheck_compare_stored (ctx->rc, label, rep, (size_t) (B * N * K), S_VEC, stored);
        }
        else
            s_fail (ctx->rc, stored, "unreadable");
        free (got);
        free (rep);
        return;
    }
    vdgx_refcheck_compare_tensor (ctx->rc, stored, t, S_VEC, stored);
}


static float
s_bf16 (float x)
{
    uint32_t u;
    memcpy (&u, &x, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy (&x, &u, 4);
    return x;
}

//  RoPE tables of positions [B, naxes, N, 2] compared with the stored [B, H, N, dim/(2H)].
static void
s_check_rope (vdgx_refcheck_t *rc, const char *cos_name, const char *sin_name, const float *pos,
              int64_t B, int naxes, int use_axes, int64_t N, const int *max_pos, double theta,
              bool dbl, bool bf16, bool bf16_out, int dim, int64_t H)
{
    const int64_t half = dim / 2, hp = half / H;
    float *cs = (float *) malloc (sizeof (float) * (size_t) (N * half));
    float *sn = (float *) malloc (sizeof (float) * (size_t) (N * half));
    float *pc = (float *) malloc (sizeof (float) * (size_t) (B * N * half));
    float *ps = (float *) malloc (sizeof (float) * (size_t) (B * N * half));
    for (int64_t b = 0; b < B; b++) {
        ltx2_dit_rope (pos + b * naxes * N * 2, use_axes, N, max_pos, theta, dbl, bf16, dim, cs, sn);
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < N; t++)
                for (int64_t j = 0; j < hp; j++) {
                    size_t to = (size_t) (((b * H + h) * N + t) * hp + j), from = (size_t) (t * half + h * hp + j);
                    pc [to] = bf16_out? s_bf16 (cs [from]): cs [from];
                    ps [to] = bf16_out? s_bf16 (sn [from]): sn [from];
                }
    }
    vdgx_refcheck_compare_stored (rc, cos_name, pc, (size_t) (B * N * half), S_VEC, cos_name);
    vdgx_refcheck_compare_stored (rc, sin_name, ps, (size_t) (B * N * half), S_VEC, sin_name);
    free (cs); free (sn); free (pc); free (ps);
}

typedef struct {
    int64_t B, Nv, Na, Lv, La, Cv, Ca;
    float *vlat, *vts, *vsig, *vpos, *vctx, *alat, *ats, *asig, *apos, *actx;
    vdgx_tensor_t vctx_t, actx_t;
} s_inputs_t;

static void
s_inputs_free (vdgx_refcheck_t *rc, s_inputs_t *in)
{
    float *all [] = { in->vlat, in->vts, in->vsig, in->vpos, in->vctx, in->alat, in->ats, in->asig,
                      in->apos, in->actx };
    for (size_t i = 0; i < sizeof (all) / sizeof (all [0]); i++)
        free (all [i]);
    vdgx_tensor_release (rc->backend, &in->vctx_t);
    vdgx_tensor_release (rc->backend, &in->actx_t);
}

static int
s_inputs (vdgx_refcheck_t *rc, s_inputs_t *in, bool sigmas)
{
    memset (in, 0, sizeof (*in));
    int64_t sv [VDGX_MAX_DIMS], sa [VDGX_MAX_DIMS], scv [VDGX_MAX_DIMS], sca [VDGX_MAX_DIMS];
    int nv = 0, na = 0, ncv = 0, nca = 0;
    size_t n = 0;
    in->vlat = vdgx_refcheck_load (rc, S_VEC, "dit.in.video.latent", sv, &nv, NULL);
    in->alat = vdgx_refcheck_load (rc, S_VEC, "dit.in.audio.latent", sa, &na, NULL);
    in->vts = vdgx_refcheck_load (rc, S_VEC, "dit.in.video.timesteps", NULL, NULL, NULL);
    in->ats = vdgx_refcheck_load (rc, S_VEC, "dit.in.audio.timesteps", NULL, NULL, NULL);
    in->vpos = vdgx_refcheck_load (rc, S_VEC, "dit.in.video.positions", NULL, NULL, NULL);
    in->apos = vdgx_refcheck_load (rc, S_VEC, "dit.in.audio.positions", NULL, NULL, NULL);
    in->vctx = vdgx_refcheck_load (rc, S_VEC, "dit.in.video.context", scv, &ncv, NULL);
    in->actx = vdgx_refcheck_load (rc, S_VEC, "dit.in.audio.context", sca, &nca, NULL);
    if (sigmas) {
        in->vsig = vdgx_refcheck_load (rc, S_VEC, "dit.in.video.sigma", NULL, NULL, &n);
        in->asig = vdgx_refcheck_load (rc, S_VEC, "dit.in.audio.sigma", NULL, NULL, &n);
    }
    if (!in->vlat || !in->alat || !in->vts || !in->ats || !in->vpos || !in->apos || !in->vctx
     || !in->actx || (sigmas && (!in->vsig || !in->asig)) || nv != 3 || na != 3 || ncv != 3
     || nca != 3 || sa [0] != sv [0] || scv [0] != sv [0] || sca [0] != sv [0]) {
        fprintf (stderr, "refcheck ltx2 dit: inputs missing or malformed in %s\n", S_VEC);
        return -1;
    }
    in->B = sv [0];
    in->Nv = sv [1];
    in->Na = sa [1];
    in->Lv = scv [1];
    in->La = sca [1];
    in->Cv = scv [2];
    in->Ca = sca [2];
    vdgx_dtype_t act = vdgx_backend_act_dtype (rc->backend);
    if (vdgx_tensor_alloc (rc->backend, &in->vctx_t, act, 3, scv)
     || vdgx_tensor_from_f32 (rc->backend, &in->vctx_t, in->vctx)
     || vdgx_tensor_alloc (rc->backend, &in->actx_t, act, 3, sca)
     || vdgx_tensor_from_f32 (rc->backend, &in->actx_t, in->actx)) {
        fprintf (stderr, "refcheck ltx2 dit: cannot place the contexts: %s\n", vdgx_backend_error (rc->backend));
        return -1;
    }
    return 0;
}

//  One forward with the stored inputs; taps compared under `prefix`, outputs under
//  prefix.out.{video,audio}.
static int
s_forward (vdgx_refcheck_t *rc, ltx2_dit_t *dit, const s_inputs_t *in, const char *prefix)
{
    const ltx2_dit_config_t *c = ltx2_dit_config (dit);
    float *vout = (float *) malloc (sizeof (float) * (size_t) (in->B * in->Nv * c->out_channels));
    float *aout = (float *) malloc (sizeof (float) * (size_t) (in->B * in->Na * c->audio_out_channels));
    ltx2_dit_step_t st = {
        .batch = in->B, .video_tokens = in->Nv, .video_latent = in->vlat, .video_timesteps = in->vts,
        .video_sigma = in->vsig, .video_positions = in->vpos, .video_context = &in->vctx_t,
        .audio_tokens = in->Na, .audio_latent = in->alat, .audio_timesteps = in->ats,
        .audio_sigma = in->asig, .audio_positions = in->apos, .audio_context = &in->actx_t,
        .video_out = vout, .audio_out = aout };
    s_ctx_t ctx = { rc, prefix };
    ltx2_dit_set_tap (dit, s_tap, &ctx);
    char *err = NULL;
    int rv = vout && aout? ltx2_dit_forward (dit, &st, &err): -1;
    ltx2_dit_set_tap (dit, NULL, NULL);
    if (rv)
        fprintf (stderr, "refcheck ltx2 dit: forward: %s\n", err? err: "out of memory");
    else {
        char name [96];
        snprintf (name, sizeof (name), "%s.out.video", prefix);
        vdgx_refcheck_compare_stored (rc, name, vout, (size_t) (in->B * in->Nv * c->out_channels), S_VEC, name);
        snprintf (name, sizeof (name), "%s.out.audio", prefix);
        vdgx_refcheck_compare_stored (rc, name, aout, (size_t) (in->B * in->Na * c->audio_out_channels), S_VEC, name);
    }
    free (err);
    free (vout);
    free (aout);
    return rv;
}

static int
s_run (vdgx_refcheck_t *rc, bool want_v23)
{
    char path [4096];
    snprintf (path, sizeof (path), "%s/tiny_checkpoint.safetensors", rc->dir);
    char *err = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (path, &err);
    ltx2_dit_config_t cfg;
    if (!ckpt || ltx2_dit_config_from_ckpt (ckpt, &cfg, &err)) {
        fprintf (stderr, "refcheck ltx2 dit: %s\n", err? err: "cannot open the checkpoint");
        free (err);
        vdgx_ckpt_destroy (&ckpt);
        return -1;
    }
    bool ok = cfg.av_gate_other_sigma == want_v23 && cfg.gated_attention == want_v23
           && cfg.cross_attention_adaln == want_v23 && cfg.prompt_adaln == want_v23
           && cfg.caption_projection == !want_v23;
    printf ("  %-4s configuration from the checkpoint metadata: %s (%d layers, video %d x %d, audio "
            "%d x %d, gated %d, cross adaLN %d, prompt adaLN %d, caption projection %d, a<->v gate "
            "from the %s sigma, av_ca x%g)\n", ok? "PASS": "FAIL", want_v23? "LTX-2.3": "LTX-2",
            cfg.layers, cfg.heads, cfg.head_dim, cfg.audio_heads, cfg.audio_head_dim,
            cfg.gated_attention, cfg.cross_attention_adaln, cfg.prompt_adaln, cfg.caption_projection,
            cfg.av_gate_other_sigma? "other modality's": "own per-token", cfg.av_ca_timestep_scale);
    rc->checks++;
    rc->failures += !ok;
    const char *precision = rc->gpu? "bf16": "fp32";
    vdgx_wsrc_t *src = vdgx_wsrc_new (ckpt, &ltx2_dit_map, "LTX-2 checkpoint");
    ltx2_dit_t *dit = src? ltx2_dit_new (rc->backend, src, &cfg, precision, &err): NULL;
    size_t used = src? vdgx_wsrc_used (src): 0;
    vdgx_wsrc_destroy (&src);
    if (!dit) {
        fprintf (stderr, "refcheck ltx2 dit: %s\n", err? err: "cannot load");
        free (err);
        vdgx_ckpt_destroy (&ckpt);
        return -1;
    }
    //  every transformer tensor of the checkpoint is used (the connectors belong to the text path)
    size_t want_used = 0;
    for (size_t i = 0; i < vdgx_ckpt_count (ckpt); i++) {
        const char *nm = vdgx_ckpt_at (ckpt, i)->name;
        want_used += strncmp (nm, "model.diffusion_model.", 22) == 0 && !strstr (nm, "embeddings_connector");
    }
    ok = used == want_used;
    printf ("  %-4s checkpoint tensors read: %zu of %zu transformer tensors\n", ok? "PASS": "FAIL",
            used, want_used);
    rc->checks++;
    rc->failures += !ok;
    s_inputs_t in;
    int rv = s_inputs (rc, &in, want_v23);
    if (rv == 0) {
        //  positions from the latent shapes (F, H, W) and the audio frame count
        int64_t F = 3, H = 2, W = 3;
        json_t *dc = json_object_get (json_object_get (rc->manifest, "configs"), "dit_case");
        json_t *vl = json_object_get (dc, "video_latent");
        double fps = json_number_value (json_object_get (dc, "fps"));
        if (json_array_size (vl) == 5) {
            F = json_integer_value (json_array_get (vl, 2));
            H = json_integer_value (json_array_get (vl, 3));
            W = json_integer_value (json_array_get (vl, 4));
        }
        if (F * H * W != in.Nv || !(fps > 0))
            s_fail (rc, "dit.in.video.positions", "manifest dit_case does not match the inputs");
        else {
            float *vp = (float *) malloc (sizeof (float) * (size_t) (in.B * 3 * in.Nv * 2));
            float *ap = (float *) malloc (sizeof (float) * (size_t) (in.B * in.Na * 2));
            for (int64_t b = 0; b < in.B; b++) {
                ltx2_dit_video_positions (F, H, W, fps, vp + b * 3 * in.Nv * 2);
                ltx2_dit_audio_positions (in.Na, ap + b * in.Na * 2);
            }
            vdgx_refcheck_compare_stored (rc, "dit.in.video.positions", vp, (size_t) (in.B * 3 * in.Nv * 2),
                                          S_VEC, "dit.in.video.positions");
            vdgx_refcheck_compare_stored (rc, "dit.in.audio.positions", ap, (size_t) (in.B * in.Na * 2),
                                          S_VEC, "dit.in.audio.positions");
            free (vp);
            free (ap);
        }
        const int xmax [1] = { cfg.max_pos [0] > cfg.audio_max_pos? cfg.max_pos [0]: cfg.audio_max_pos };
        const int C = cfg.heads * cfg.head_dim, Ca = cfg.audio_heads * cfg.audio_head_dim;
        s_check_rope (rc, "dit.rope.video.cos", "dit.rope.video.sin", in.vpos, in.B, 3, 3, in.Nv,
                      cfg.max_pos, cfg.rope_theta, cfg.rope_double, false, false, C, cfg.heads);
        s_check_rope (rc, "dit.rope.audio.cos", "dit.rope.audio.sin", in.apos, in.B, 1, 1, in.Na,
                      &cfg.audio_max_pos, cfg.rope_theta, cfg.rope_double, false, false, Ca, cfg.audio_heads);
        s_check_rope (rc, "dit.rope.video.cross_cos", "dit.rope.video.cross_sin", in.vpos, in.B, 3, 1,
                      in.Nv, xmax, cfg.rope_theta, cfg.rope_double, false, false, cfg.audio_cross_attention_dim,
                      cfg.heads);
        s_check_rope (rc, "dit.rope.audio.cross_cos", "dit.rope.audio.cross_sin", in.apos, in.B, 1, 1,
                      in.Na, xmax, cfg.rope_theta, cfg.rope_double, false, false, cfg.audio_cross_attention_dim,
                      cfg.audio_heads);
        vdgx_ckpt_t *vec = vdgx_refcheck_file (rc, S_VEC);
        if (vec && vdgx_ckpt_find (vec, "rope_bf16.video.cos")) {
            //  the bf16 pipeline's tables: video positions in bf16, audio positions float32
            s_check_rope (rc, "rope_bf16.video.cos", "rope_bf16.video.sin", in.vpos, in.B, 3, 3, in.Nv,
                          cfg.max_pos, cfg.rope_theta, cfg.rope_double, true, true, C, cfg.heads);
            s_check_rope (rc, "rope_bf16.audio.cos", "rope_bf16.audio.sin", in.apos, in.B, 1, 1, in.Na,
                          &cfg.audio_max_pos, cfg.rope_theta, cfg.rope_double, false, true, Ca,
                          cfg.audio_heads);
            s_check_rope (rc, "rope_bf16.video.cross_cos", "rope_bf16.video.cross_sin", in.vpos, in.B,
                          3, 1, in.Nv, xmax, cfg.rope_theta, cfg.rope_double, true, true,
                          cfg.audio_cross_attention_dim, cfg.heads);
        }
        ltx2_dit_set_bf16_positions (dit, false);
        rv = s_forward (rc, dit, &in, "dit");
        if (rv == 0 && vec && vdgx_ckpt_find (vec, "dit_avca1.out.video")) {
            //  the code default av_ca_timestep_scale_multiplier = 1: same weights, gate of sigma
            ltx2_dit_config_t c1 = cfg;
            c1.av_ca_timestep_scale = 1;
            vdgx_wsrc_t *src1 = vdgx_wsrc_new (ckpt, &ltx2_dit_map, "LTX-2 checkpoint");
            ltx2_dit_t *dit1 = src1? ltx2_dit_new (rc->backend, src1, &c1, precision, &err): NULL;
            vdgx_wsrc_destroy (&src1);
            if (!dit1) {
                fprintf (stderr, "refcheck ltx2 dit: %s\n", err? err: "cannot load");
                rv = -1;
            }
            else {
                ltx2_dit_set_bf16_positions (dit1, false);
                rv = s_forward (rc, dit1, &in, "dit_avca1");
            }
            ltx2_dit_destroy (&dit1);
        }
    }
    s_inputs_free (rc, &in);
    ltx2_dit_destroy (&dit);
    vdgx_ckpt_destroy (&ckpt);
    free (err);
    return rv;
}

int
vdgx_refcheck_ltx2_dit (vdgx_refcheck_t *rc)
{
    return s_run (rc, false);
}

int
vdgx_refcheck_ltx23_dit (vdgx_refcheck_t *rc)
{
    return s_run (rc, true);
}
