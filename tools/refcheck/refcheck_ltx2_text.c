/*  refcheck_ltx2_text.c - the LTX-2 (part text of `vdgx-refcheck ltx2`) and LTX-2.3 (part text
    of `vdgx-refcheck ltx23`) text paths against the official code's outputs: two prompts'
    stand-in Gemma hidden states through the feature extractor, both connectors (registers,
    every stored block, RoPE tables) to the video and audio encodings. The arrangement comes
    from tiny_checkpoint.safetensors' metadata, as for a real checkpoint. Features are compared
    on the valid tokens (padding rows never reach the connectors); everything after the
    registers on every row.
*/
#include "refcheck.h"
#include "ltx2_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VEC "vectors_text.safetensors"

typedef struct {
    vdgx_refcheck_t *rc;
    const char *prompt;         //  "text.p0"
    const uint8_t *mask;
    size_t tokens;
} s_ctx_t;

static void
s_tap (void *arg, const char *name, const vdgx_tensor_t *t)
{
    s_ctx_t *ctx = (s_ctx_t *) arg;
    char stored [128];
    snprintf (stored, sizeof (stored), "%s.mid.%s", ctx->prompt, name);
    vdgx_ckpt_t *vec = vdgx_refcheck_file (ctx->rc, S_VEC);
    if (!vec || !vdgx_ckpt_find (vec, stored))
        return;                 //  not every block is stored
    size_t n = (size_t) vdgx_tensor_numel (t), numel = 0;
    float *got = (float *) malloc (sizeof (float) * (n? n: 1));
    float *want = vdgx_refcheck_load (ctx->rc, S_VEC, stored, NULL, NULL, &numel);
    if (!got || !want || vdgx_tensor_to_f32 (ctx->rc->backend, t, got)) {
        printf ("  FAIL %-44s unreadable\n", stored);
        ctx->rc->checks++;
        ctx->rc->failures++;
    }
    else
    if (numel == n)
        vdgx_refcheck_compare (ctx->rc, stored, got, want, n);
    else {
        //  features of the valid tokens only: compare with the stored valid rows
        size_t valid = 0;
        for (size_t i = 0; i < ctx->tokens; i++)
            valid += ctx->mask [i];
        size_t row = valid? n / valid: 0;
        if (valid == 0 || n % valid || numel != row * ctx->tokens) {
            printf ("  FAIL %-44s size mismatch: %zu vs stored %zu\n", stored, n, numel);
            ctx->rc->checks++;
            ctx->rc->failures++;
        }
        else {
            for (size_t r = 0, at = 0; r < ctx->tokens; r++)
                if (ctx->mask [r])
                    memmove (want + (at++) * row, want + r * row, sizeof (float) * row);
            char label [160];
            snprintf (label, sizeof (label), "%s (valid rows)", stored);
            vdgx_refcheck_compare (ctx->rc, label, got, want, n);
        }
    }
    free (got);
    free (want);
}

//  The stored RoPE tables [1, H, T, hd/2] against ltx2_text_rope's [T, C/2].
static void
s_check_rope (vdgx_refcheck_t *rc, const ltx2_text_config_t *c, const char *prompt)
{
    char name [128];
    snprintf (name, sizeof (name), "%s.mid.video_conn.rope_cos", prompt);
    vdgx_ckpt_t *vec = vdgx_refcheck_file (rc, S_VEC);
    if (!vec || !vdgx_ckpt_find (vec, name))
        return;
    int64_t shape [VDGX_MAX_DIMS];
    int ndim = 0;
    size_t n = 0;
    float *want = vdgx_refcheck_load (rc, S_VEC, name, shape, &ndim, &n);
    const int C = c->video.dim, H = c->video.heads, half = c->video.head_dim / 2;
    if (!want || ndim != 4 || shape [1] != H || shape [3] != half) {
        printf ("  FAIL %-44s not [1, %d, T, %d]\n", name, H, half);
        rc->checks++;
        rc->failures++;
        free (want);
        return;
    }
    free (want);
    const int T = (int) shape [2];
    float *cs = (float *) malloc (sizeof (float) * (size_t) T * C / 2);
    float *sn = (float *) malloc (sizeof (float) * (size_t) T * C / 2);
    float *perm = (float *) malloc (sizeof (float) * (size_t) T * C / 2);
    ltx2_text_rope (c->rope_theta, c->rope_max_pos, c->rope_double, C, T, cs, sn);
    for (int k = 0; k < 2; k++) {
        const float *src = k? sn: cs;
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++)
                memcpy (perm + ((size_t) h * T + t) * half, src + (size_t) t * C / 2 + (size_t) h * half,
                        sizeof (float) * (size_t) half);
        snprintf (name, sizeof (name), "%s.mid.video_conn.rope_%s", prompt, k? "sin": "cos");
        vdgx_refcheck_compare_stored (rc, name, perm, (size_t) T * C / 2, S_VEC, name);
    }
    free (cs);
    free (sn);
    free (perm);
}

static int
s_check_prompt (vdgx_refcheck_t *rc, ltx2_text_t *text, const char *prompt)
{
    char name [128];
    int64_t shape [VDGX_MAX_DIMS];
    int ndim = 0;
    size_t n = 0, mn = 0;
    snprintf (name, sizeof (name), "%s.in.hidden_states", prompt);
    float *hs = vdgx_refcheck_load (rc, S_VEC, name, shape, &ndim, &n);
    snprintf (name, sizeof (name), "%s.in.attention_mask", prompt);
    int64_t *m = vdgx_refcheck_load_i64 (rc, S_VEC, name, NULL, NULL, &mn);
    if (!hs || !m || ndim != 4 || shape [1] != 1 || (int64_t) mn != shape [2]) {
        fprintf (stderr, "refcheck ltx2 text: %s inputs missing or not [S,1,T,D] + [1,T]\n", prompt);
        free (hs);
        free (m);
        return -1;
    }
    uint8_t *mask = (uint8_t *) malloc (mn);
    for (size_t i = 0; i < mn; i++)
        mask [i] = m [i] != 0;
    free (m);
    vdgx_tensor_t hidden, video, audio;
    int rv = -1;
    if (vdgx_tensor_alloc (rc->backend, &hidden, vdgx_backend_act_dtype (rc->backend), 4, shape)
     || vdgx_tensor_from_f32 (rc->backend, &hidden, hs)) {
        fprintf (stderr, "refcheck ltx2 text: cannot place the inputs: %s\n", vdgx_backend_error (rc->backend));
        goto done;
    }
    s_ctx_t ctx = { rc, prompt, mask, mn };
    ltx2_text_set_tap (text, s_tap, &ctx);
    rv = ltx2_text_encode (text, &hidden, mask, &video, &audio);
    ltx2_text_set_tap (text, NULL, NULL);
    vdgx_tensor_release (rc->backend, &hidden);
    if (rv) {
        fprintf (stderr, "refcheck ltx2 text: %s: %s\n", prompt, ltx2_text_error (text));
        goto done;
    }
    snprintf (name, sizeof (name), "%s.out.video_encoding", prompt);
    vdgx_refcheck_compare_tensor (rc, name, &video, S_VEC, name);
    snprintf (name, sizeof (name), "%s.out.audio_encoding", prompt);
    vdgx_refcheck_compare_tensor (rc, name, &audio, S_VEC, name);
    vdgx_tensor_release (rc->backend, &video);
    vdgx_tensor_release (rc->backend, &audio);
    //  the returned mask is all ones (registers fill the padding)
    snprintf (name, sizeof (name), "%s.out.attention_mask", prompt);
    int64_t *om = vdgx_refcheck_load_i64 (rc, S_VEC, name, NULL, NULL, &n);
    bool ones = om && n == mn;
    for (size_t i = 0; ones && i < n; i++)
        ones = om [i] == 1;
    printf ("  %-4s %-44s (all ones)\n", ones? "PASS": "FAIL", name);
    rc->checks++;
    rc->failures += !ones;
    free (om);
    s_check_rope (rc, ltx2_text_config (text), prompt);
done:
    free (hs);
    free (mask);
    return rv;
}

static int
s_run (vdgx_refcheck_t *rc, bool want_v2)
{
    char path [4096];
    snprintf (path, sizeof (path), "%s/tiny_checkpoint.safetensors", rc->dir);
    char *err = NULL;
    ltx2_text_t *text = ltx2_text_new (path, rc->backend, rc->gpu? VDGX_WFMT_BF16: VDGX_WFMT_F32, &err);
    if (!text) {
        fprintf (stderr, "refcheck ltx2 text: %s\n", err? err: "cannot load");
        free (err);
        return -1;
    }
    const ltx2_text_config_t *c = ltx2_text_config (text);
    bool ok = c->v2 == want_v2;
    printf ("  %-4s arrangement from the checkpoint metadata: %s (features %d, video %d x %d heads, "
            "audio %d x %d heads, %d/%d layers, %d registers)\n", ok? "PASS": "FAIL",
            c->v2? "LTX-2.3": "LTX-2", c->feature_dim, c->video_dim, c->video.heads, c->audio_dim,
            c->audio.heads, c->video.layers, c->audio.layers, c->video.registers);
    rc->checks++;
    rc->failures += !ok;
    int rv = s_check_prompt (rc, text, "text.p0");
    if (rv == 0)
        rv = s_check_prompt (rc, text, "text.p1");
    ltx2_text_destroy (&text);
    return rv;
}

int
vdgx_refcheck_ltx2_text (vdgx_refcheck_t *rc)
{
    return s_run (rc, false);
}

int
vdgx_refcheck_ltx23_text (vdgx_refcheck_t *rc)
{
    return s_run (rc, true);
}
