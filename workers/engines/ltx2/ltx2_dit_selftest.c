/*  ltx2_dit_selftest.c - ltx2_dit_test: the configuration from both reference checkpoints'
    metadata and its refusals, the parameter counts of the released configurations against the
    real files' layouts (real_checkpoint_layout.json of both reference sets: 18 876 174 592
    for LTX-2 19B, 18 988 838 144 for LTX-2.3 22B), the weight estimate against what a model holds, and on
    random weights: a batch-2 forward equals two batch-1 forwards, contexts of the wrong width
    are refused, FP8 and NVFP4 block weights stay close to F32. The official outputs are checked by
    `vdgx-refcheck ltx2|ltx23 --part dit`. Needs VDGX_SOURCE_DIR (ctest sets it).
*/
#include "ltx2_dit.h"
#include "vdgx_nn.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
s_reference (const char *set)
{
    const char *src = getenv ("VDGX_SOURCE_DIR");
    assert (src && "VDGX_SOURCE_DIR must name the source tree (ctest sets it)");
    return vdgx_strdupf ("%s/tests/data/reference/%s/tiny_checkpoint.safetensors", src, set);
}

static void
s_fill (uint64_t *state, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) {
        float u = (float) (vdgx_splitmix64 (state) >> 40) / (float) (1 << 24);
        x [i] = lo + (hi - lo) * u;
        if (x [i] == 0)
            x [i] = 1e-3f;
    }
}

//  A forward of `batch` samples on random inputs (seeded); outputs malloc'd.
typedef struct {
    int64_t B, Nv, Na, L;
    float *vlat, *vts, *vsig, *vpos, *vctx, *alat, *ats, *asig, *apos, *actx, *vout, *aout;
} s_case_t;

static void
s_case_new (s_case_t *k, const ltx2_dit_config_t *c, int64_t B, uint64_t seed)
{
    memset (k, 0, sizeof (*k));
    k->B = B;
    k->Nv = 2 * 2 * 3;
    k->Na = 7;
    k->L = 5;
    int64_t vctx = c->caption_projection? c->caption_channels: c->cross_attention_dim;
    int64_t actx = c->caption_projection? c->caption_channels: c->audio_cross_attention_dim;
    uint64_t st = seed;
#define S_ALLOC(p, n) (p = (float *) malloc (sizeof (float) * (size_t) (n)), assert (p))
    S_ALLOC (k->vlat, B * k->Nv * c->in_channels);
    S_ALLOC (k->alat, B * k->Na * c->audio_in_channels);
    S_ALLOC (k->vts, B * k->Nv);
    S_ALLOC (k->ats, B * k->Na);
    S_ALLOC (k->vsig, B);
    S_ALLOC (k->asig, B);
    S_ALLOC (k->vpos, B * 3 * k->Nv * 2);
    S_ALLOC (k->apos, B * k->Na * 2);
    S_ALLOC (k->vctx, B * k->L * vctx);
    S_ALLOC (k->actx, B * k->L * actx);
    S_ALLOC (k->vout, B * k->Nv * c->out_channels);
    S_ALLOC (k->aout, B * k->Na * c->audio_out_channels);
#undef S_ALLOC
    s_fill (&st, k->vlat, (size_t) (B * k->Nv * c->in_channels), -1, 1);
    s_fill (&st, k->alat, (size_t) (B * k->Na * c->audio_in_channels), -1, 1);
    s_fill (&st, k->vctx, (size_t) (B * k->L * vctx), -1, 1);
    s_fill (&st, k->actx, (size_t) (B * k->L * actx), -1, 1);
    for (int64_t b = 0; b < B; b++) {
        float sv = 0.2f + 0.3f * (float) b, sa = 0.9f - 0.25f * (float) b;
        k->vsig [b] = sv;
        k->asig [b] = sa;
        for (int64_t i = 0; i < k->Nv; i++)     //  first latent frame conditioned (timestep 0)
            k->vts [b * k->Nv + i] = i < 6 && b == 1? 0.0f: sv;
        for (int64_t i = 0; i < k->Na; i++)
            k->ats [b * k->Na + i] = sa;
        ltx2_dit_video_positions (2, 2, 3, 24.0, k->vpos + b * 3 * k->Nv * 2);
        ltx2_dit_audio_positions (k->Na, k->apos + b * k->Na * 2);
    }
}

static void
s_case_free (s_case_t *k)
{
    float *all [] = { k->vlat, k->vts, k->vsig, k->vpos, k->vctx, k->alat, k->ats, k->asig, k->apos,
                      k->actx, k->vout, k->aout };
    for (size_t i = 0; i < sizeof (all) / sizeof (all [0]); i++)
        free (all [i]);
}

//  Runs samples [from, from + n) of the case; outputs into the case's arrays at `from`.
static int
s_run (vdgx_backend_t *b, ltx2_dit_t *dit, s_case_t *k, int64_t from, int64_t n, int64_t ctx_width_delta,
       char **err)
{
    const ltx2_dit_config_t *c = ltx2_dit_config (dit);
    int64_t vctx = (c->caption_projection? c->caption_channels: c->cross_attention_dim);
    int64_t actx = (c->caption_projection? c->caption_channels: c->audio_cross_attention_dim);
    vdgx_tensor_t vt, at;
    const int64_t sv [3] = { n, k->L, vctx + ctx_width_delta }, sa [3] = { n, k->L, actx };
    float *vsrc = k->vctx + from * k->L * vctx;
    float *tmp = NULL;
    if (ctx_width_delta) {
        tmp = (float *) calloc ((size_t) (n * k->L * (vctx + ctx_width_delta)), sizeof (float));
        vsrc = tmp;
    }
    assert (vdgx_nn_upload (b, &vt, VDGX_DTYPE_F32, 3, sv, vsrc) == 0);
    assert (vdgx_nn_upload (b, &at, VDGX_DTYPE_F32, 3, sa, k->actx + from * k->L * actx) == 0);
    free (tmp);
    ltx2_dit_step_t st = {
        .batch = n, .video_tokens = k->Nv, .video_latent = k->vlat + from * k->Nv * c->in_channels,
        .video_timesteps = k->vts + from * k->Nv, .video_sigma = k->vsig + from,
        .video_positions = k->vpos + from * 3 * k->Nv * 2, .video_context = &vt,
        .audio_tokens = k->Na, .audio_latent = k->alat + from * k->Na * c->audio_in_channels,
        .audio_timesteps = k->ats + from * k->Na, .audio_sigma = k->asig + from,
        .audio_positions = k->apos + from * k->Na * 2, .audio_context = &at,
        .video_out = k->vout + from * k->Nv * c->out_channels,
        .audio_out = k->aout + from * k->Na * c->audio_out_channels };
    int rc = ltx2_dit_forward (dit, &st, err);
    vdgx_tensor_release (b, &vt);
    vdgx_tensor_release (b, &at);
    return rc;
}

static double
s_maxdiff (const float *a, const float *b, size_t n, double *maxabs)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        assert (isfinite (a [i]) && isfinite (b [i]));
        d = fmax (d, fabs ((double) a [i] - b [i]));
        m = fmax (m, fabs ((double) b [i]));
    }
    if (maxabs)
        *maxabs = m;
    return d;
}

//  The tiny configuration of `set`, shrunk widths kept; random weights.
static void
s_random_checks (vdgx_backend_t *b, const ltx2_dit_config_t *cfg, bool verbose)
{
    char *err = NULL;
    vdgx_wsrc_t *src = vdgx_wsrc_new_random (7, "ltx2 dit test");
    ltx2_dit_t *dit = ltx2_dit_new (b, src, cfg, "fp32", &err);
    assert (dit);
    assert (ltx2_dit_bytes (dit) == ltx2_dit_weight_bytes (cfg, VDGX_WFMT_F32, false));
    //  batch 2 at once == each sample alone (per-token and per-sample values stay per sample)
    s_case_t k, k1;
    s_case_new (&k, cfg, 2, 11);
    s_case_new (&k1, cfg, 2, 11);
    assert (s_run (b, dit, &k, 0, 2, 0, &err) == 0);
    assert (s_run (b, dit, &k1, 0, 1, 0, &err) == 0);
    assert (s_run (b, dit, &k1, 1, 1, 0, &err) == 0);
    double mv, ma;
    double dv = s_maxdiff (k1.vout, k.vout, (size_t) (2 * k.Nv * cfg->out_channels), &mv);
    double da = s_maxdiff (k1.aout, k.aout, (size_t) (2 * k.Na * cfg->audio_out_channels), &ma);
    if (verbose)
        printf ("\n    batch 2 vs 2 x batch 1: video %.2e (max %.2e), audio %.2e (max %.2e)", dv, mv, da, ma);
    assert (mv > 0 && ma > 0 && dv <= 1e-5 * (1 + mv) && da <= 1e-5 * (1 + ma));
    //  the two samples differ (timesteps, sigmas, inputs): a forward that ignores them fails
    assert (s_maxdiff (k.vout, k.vout + k.Nv * cfg->out_channels, (size_t) (k.Nv * cfg->out_channels), NULL) > 1e-6);
    //  a context of the wrong width is refused with a message
    assert (s_run (b, dit, &k1, 0, 1, 3, &err) == -1 && err && strstr (err, "context"));
    free (err);
    err = NULL;
    //  missing inputs
    ltx2_dit_step_t bad;
    memset (&bad, 0, sizeof (bad));
    assert (ltx2_dit_forward (dit, &bad, &err) == -1 && err);
    free (err);
    err = NULL;
    //  FP8 block weights: the same model quantized stays close
    vdgx_wsrc_t *src8 = vdgx_wsrc_new_random (7, "ltx2 dit test");
    ltx2_dit_t *dit8 = ltx2_dit_new (b, src8, cfg, "fp8", &err);
    assert (dit8);
    assert (ltx2_dit_bytes (dit8) < ltx2_dit_bytes (dit));
    assert (s_run (b, dit8, &k1, 0, 2, 0, &err) == 0);
    dv = s_maxdiff (k1.vout, k.vout, (size_t) (2 * k.Nv * cfg->out_channels), &mv);
    if (verbose)
        printf ("\n    fp8 vs f32: video %.2e (max %.2e)", dv, mv);
    assert (dv < 0.1 * mv);
    ltx2_dit_destroy (&dit8);
    vdgx_wsrc_destroy (&src8);
    //  NVFP4 block weights (weight-only on the CPU): usable, further off
    vdgx_wsrc_t *src4 = vdgx_wsrc_new_random (7, "ltx2 dit test");
    ltx2_dit_t *dit4 = ltx2_dit_new (b, src4, cfg, "nvfp4", &err);
    assert (dit4);
    assert (ltx2_dit_bytes (dit4) == ltx2_dit_weight_bytes (cfg, VDGX_WFMT_NVFP4, false));
    assert (s_run (b, dit4, &k1, 0, 2, 0, &err) == 0);
    double d4 = s_maxdiff (k1.vout, k.vout, (size_t) (2 * k.Nv * cfg->out_channels), &mv);
    if (verbose)
        printf ("\n    nvfp4 vs f32: video %.2e (max %.2e)", d4, mv);
    assert (d4 > dv && d4 < 0.3 * mv);
    ltx2_dit_destroy (&dit4);
    vdgx_wsrc_destroy (&src4);
    s_case_free (&k);
    s_case_free (&k1);
    ltx2_dit_destroy (&dit);
    assert (!dit);
    vdgx_wsrc_destroy (&src);
}

void
ltx2_dit_test (bool verbose)
{
    printf (" * ltx2_dit: ");
    char *err = NULL;
    //  configurations from the reference checkpoints
    ltx2_dit_config_t c2, c23;
    char *p2 = s_reference ("ltx2"), *p23 = s_reference ("ltx23");
    vdgx_ckpt_t *k2 = vdgx_ckpt_open (p2, &err), *k23 = vdgx_ckpt_open (p23, &err);
    assert (k2 && k23);
    assert (ltx2_dit_config_from_ckpt (k2, &c2, &err) == 0);
    assert (ltx2_dit_config_from_ckpt (k23, &c23, &err) == 0);
    assert (c2.layers == 2 && c2.heads == 4 && c2.head_dim == 16 && c2.audio_head_dim == 8
         && c2.caption_projection && c2.caption_channels == 32 && !c2.gated_attention
         && !c2.cross_attention_adaln && !c2.prompt_adaln && !c2.av_gate_other_sigma
         && c2.av_ca_timestep_scale == 1000 && c2.rope_double && c2.max_pos [1] == 2048);
    assert (!c23.caption_projection && c23.gated_attention && c23.cross_attention_adaln
         && c23.prompt_adaln && c23.av_gate_other_sigma && c23.ff_bias && c23.audio_ff_bias);
    //  the a<->v gate follows the release line: model_version >= 2.3 alone switches it
    ltx2_dit_config_t c;
    const char *v1 = "{\"transformer\": {}}";
    assert (ltx2_dit_config_from_json (v1, NULL, &c, &err) == 0 && !c.av_gate_other_sigma
         && c.av_ca_timestep_scale == 1 && !c.rope_double && c.layers == 48);
    assert (ltx2_dit_config_from_json (v1, "2.3.0", &c, &err) == 0 && c.av_gate_other_sigma);
    assert (ltx2_dit_config_from_json (v1, "2.0.1", &c, &err) == 0 && !c.av_gate_other_sigma);
    //  refusals: no config, not JSON, settings not implemented, malformed values
    const char *bad [] = {
        NULL, "not json", "{\"vae\": {}}", "{\"transformer\": {\"rope_type\": \"interleaved\"}}",
        "{\"transformer\": {\"num_layers\": -3}}", "{\"transformer\": {\"num_layers\": \"48\"}}",
        "{\"transformer\": {\"audio_num_attention_heads\": 16}}",
        "{\"transformer\": {\"qk_norm\": \"layer_norm\"}}",
        "{\"transformer\": {\"positional_embedding_max_pos\": [20, 2048]}}",
        "{\"transformer\": {\"apply_gated_attention\": 1}}",
        "{\"transformer\": {\"use_keyframes_abs_pos_embedding\": true}}" };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
        free (err);
        err = NULL;
        assert (ltx2_dit_config_from_json (bad [i], NULL, &c, &err) == -1 && err && strstr (err, "LTX-2"));
    }
    free (err);
    err = NULL;
    //  the released configurations: parameter counts of the real files' transformers
    ltx2_dit_config_t r19, r22;
    assert (ltx2_dit_config_preset ("19b", &r19) == 0 && ltx2_dit_config_preset ("22b", &r22) == 0);
    assert (ltx2_dit_config_preset ("7b", &c) == -1);
    uint64_t n19 = ltx2_dit_param_count (&r19), n22 = ltx2_dit_param_count (&r22);
    uint64_t bf19 = ltx2_dit_weight_bytes (&r19, VDGX_WFMT_BF16, true);
    uint64_t f8 = ltx2_dit_weight_bytes (&r22, VDGX_WFMT_FP8_E4M3, true);
    uint64_t f4 = ltx2_dit_weight_bytes (&r22, VDGX_WFMT_NVFP4, true);
    if (verbose)
        printf ("\n    params 19B %llu, 22B %llu; 19B bf16 %.2f GB, 22B fp8 %.2f GB, nvfp4 %.2f GB",
                (unsigned long long) n19, (unsigned long long) n22, bf19 / 1e9, f8 / 1e9, f4 / 1e9);
    assert (n19 == 18876174592ull && n22 == 18988838144ull);
    assert (bf19 > 2 * n19 - n19 / 50 && bf19 < 2 * n19 + n19 / 50);
    assert (f8 < bf19 * 6 / 10 && f4 < f8 * 7 / 10);
    //  forwards on random weights, both arrangements (tiny widths)
    vdgx_backend_t *b = vdgx_backend_new ("cpu:2", VDGX_DTYPE_F32, &err);
    assert (b);
    s_random_checks (b, &c2, verbose);
    s_random_checks (b, &c23, verbose);
    //  a checkpoint lacking a tensor names it
    vdgx_wsrc_t *src = vdgx_wsrc_new (k2, &ltx2_dit_map, "LTX-2 checkpoint");
    ltx2_dit_config_t cg = c2;
    cg.gated_attention = true;      //  the LTX-2 file has no to_gate_logits
    assert (!ltx2_dit_new (b, src, &cg, "fp32", &err) && err && strstr (err, "to_gate_logits"));
    free (err);
    err = NULL;
    assert (!ltx2_dit_new (b, src, &c2, "fp7", &err) && err);
    free (err);
    vdgx_wsrc_destroy (&src);
    vdgx_backend_destroy (&b);
    vdgx_ckpt_destroy (&k2);
    vdgx_ckpt_destroy (&k23);
    free (p2);
    free (p23);
    printf ("%sOK\n", verbose? "\n": "");
}
