/*  magi1_sample.c - MAGI-1's chunk scheduler over magi1_dit (see magi1_sample.h). */
#include "magi1_sample.h"
#include "vdgx_ckpt.h"
#include "vdgx_util.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WHO "magi1 sample"
#define S_NULL_ROWS 50

void
magi1_sched_defaults (magi1_sched_t *s, int num_steps)
{
    memset (s, 0, sizeof (*s));
    s->num_steps = num_steps;
    s->window_size = 4;
    s->cfg_number = 3;
    s->clean_t = 0.9999f;
    const int kv [4] = { 5, 4, 3, 2 };
    memcpy (s->noise2clean_kvrange, kv, sizeof (kv));
    s->clean_chunk_kvrange = 1;
    const float tr [5] = { 0.0f, 0.0217f, 0.1f, 0.3f, 0.999f };
    const float ps [5] = { 1.5f, 1.5f, 1.5f, 1.0f, 1.0f };
    const float ts [5] = { 7.5f, 7.5f, 7.5f, 0.0f, 0.0f };
    memcpy (s->cfg_t_range, tr, sizeof (tr));
    memcpy (s->prev_chunk_scales, ps, sizeof (ps));
    memcpy (s->text_scales, ts, sizeof (ts));
    s->nearly_clean_threshold = 0.3;
    s->nearly_clean_blend = 0.7f;
}

int
magi1_sched_official (magi1_sched_t *s, const char *variant)
{
    assert (s && variant);
    static const struct { const char *name; int steps, cfg; } official [] = {
        { "4.5B_base", 64, 3 }, { "4.5B_distill", 64, 1 }, { "4.5B_distill_quant", 64, 1 },
        { "24B_base", 32, 3 }, { "24B_distill", 16, 1 }, { "24B_distill_quant", 16, 1 } };
    for (size_t i = 0; i < sizeof (official) / sizeof (official [0]); i++)
        if (strcmp (variant, official [i].name) == 0) {
            magi1_sched_defaults (s, official [i].steps);
            s->cfg_number = official [i].cfg;
            return 0;
        }
    return -1;
}

double
magi1_sched_distill_dt (int num_steps)
{
    return (double) num_steps / 4.0 * 2.0;
}

double
magi1_sched_distill_dt_at (const magi1_sched_t *s, int idx)
{
    if (s->num_steps != 12)
        return magi1_sched_distill_dt (s->num_steps);
    //  init_intervel: [2, 1, 1] (or [1, 1, 2]) repeated; distill_dt = 4 / interval * 2.
    static const int def [3] = { 2, 1, 1 }, alt [3] = { 1, 1, 2 };
    int interval = (s->shortcut_16_16_8? alt: def) [idx % 3];
    return 4.0 / interval * 2.0;
}

static void
s_grid (int num_steps, bool mode_16_16_8, float *t)
{
    for (int i = 0; i <= num_steps; i++) {
        float v = (float) i / (float) num_steps;
        if (num_steps == 12) {
            //  base_t + accu for accu in linspace(0, 1, 5), base_t three of linspace / 4
            static const float def [3] = { 0.0f, 0.125f, 0.1875f }, alt [3] = { 0.0f, 0.0625f, 0.125f };
            v = (mode_16_16_8? alt: def) [i % 3] + 0.25f * (float) (i / 3);
        }
        v = v * v;
        t [i] = (v / 3.0f) / (1.0f - (2.0f / 3.0f) * v);
    }
}

void
magi1_sched_t_grid (int num_steps, float *t)
{
    s_grid (num_steps, false, t);
}

void
magi1_sched_grid (const magi1_sched_t *s, float *t)
{
    s_grid (s->num_steps, s->shortcut_16_16_8, t);
}

void
magi1_sched_cfg (const magi1_sched_t *s, float t, float *p, float *txt)
{
    //  idx = searchsorted(cfg_t_range - 1e-7, t) - 1 (left side: the first bound >= t).
    int idx = 0;
    while (idx < 5 && s->cfg_t_range [idx] - 1e-7f < t)
        idx++;
    idx = idx > 0? idx - 1: 0;
    *p = s->prev_chunk_scales [idx];
    *txt = s->text_scales [idx];
}

void
magi1_caption_rows (const float *other_tokens, const float *prompt, const float *prompt_mask,
                    int64_t len, int64_t dim, int i, int n, float *y, float *mask)
{
    int d = n - i - 1;
    if (d > 7)
        d = 7;
    memcpy (y, other_tokens + (7 + d) * dim, (size_t) dim * sizeof (float));
    memcpy (y + dim, other_tokens + 1 * dim, (size_t) dim * sizeof (float));
    memcpy (y + 2 * dim, prompt, (size_t) ((len - 2) * dim) * sizeof (float));
    mask [0] = mask [1] = 1;
    memcpy (mask + 2, prompt_mask, (size_t) (len - 2) * sizeof (float));
}

//  v (float64) rounded to float16 (nearest, ties to even), as numpy's astype(float16): the
//  float32 route can land on a float16 tie that v is not on, so the neighbours of its result
//  are compared with v in float64.
static float
s_round_f16 (double v)
{
    float f = (float) v, best;
    uint16_t h;
    vdgx_convert_from_f32 (&h, VDGX_DTYPE_F16, &f, 1);
    vdgx_convert_to_f32 (&best, &h, VDGX_DTYPE_F16, 1);
    uint16_t cand [2] = { (uint16_t) (h - 1), (uint16_t) (h + 1) };
    for (int i = 0; i < 2; i++) {
        if ((cand [i] & 0x7c00) == 0x7c00 || (cand [i] ^ h) & 0x8000)
            continue;       //  inf / NaN, or across the sign
        float c;
        vdgx_convert_to_f32 (&c, &cand [i], VDGX_DTYPE_F16, 1);
        double dc = fabs ((double) c - v), db = fabs ((double) best - v);
        if (dc < db || (dc == db && !(cand [i] & 1) && (h & 1))) {
            best = c;
            h = cand [i];
        }
    }
    return best;
}

float *
magi1_special_tokens_load (const char *path, int64_t dim, int64_t *count, char **err)
{
    assert (path && count);
    char *cerr = NULL;
    vdgx_ckpt_t *ck = vdgx_ckpt_open (path, &cerr);
    if (!ck) {
        vdgx_set_error (err, "%s: special tokens: %s", S_WHO, cerr? cerr: path);
        free (cerr);
        return NULL;
    }
    const vdgx_ckpt_tensor_t *t = vdgx_ckpt_find (ck, "other_tokens");
    float *out = NULL;
    if (!t || t->ndim != 2 || t->shape [1] != dim || t->shape [0] < 15) {
        vdgx_set_error (err, "%s: %s: other_tokens missing or not [>= 15, %lld]", S_WHO, path, (long long) dim);
        goto done;
    }
    int64_t n = t->shape [0] * dim;
    out = malloc ((size_t) n * sizeof (float));
    if (!out) {
        vdgx_set_error (err, "%s: out of memory", S_WHO);
        goto done;
    }
    if (t->dtype == VDGX_DTYPE_F64)
        for (int64_t i = 0; i < n; i++) {
            double v;
            memcpy (&v, (const uint8_t *) t->data + 8 * i, 8);
            out [i] = s_round_f16 (v);
        }
    else if (vdgx_ckpt_read_f32 (t, out, &cerr) == 0)
        for (int64_t i = 0; i < n; i++)
            out [i] = s_round_f16 (out [i]);
    else {
        vdgx_set_error (err, "%s: %s: %s", S_WHO, path, cerr? cerr: "unreadable other_tokens");
        free (cerr);
        free (out);
        out = NULL;
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        if (!isfinite (out [i])) {
            vdgx_set_error (err, "%s: %s: other_tokens holds a value float16 cannot hold", S_WHO, path);
            free (out);
            out = NULL;
            goto done;
        }
    *count = t->shape [0];
done:
    vdgx_ckpt_destroy (&ck);
    return out;
}

//  dst [C, n*F, plane] <- frames [f0, f0 + n*F) of src [C, Tsrc, plane] (or the reverse).
static void
s_frames (float *dst, int64_t Tdst, int64_t fdst, const float *src, int64_t Tsrc, int64_t fsrc,
          int64_t nf, int64_t C, int64_t plane)
{
    for (int64_t c = 0; c < C; c++)
        memcpy (dst + (c * Tdst + fdst) * plane, src + (c * Tsrc + fsrc) * plane,
                (size_t) (nf * plane) * sizeof (float));
}

//  The distill step: one caption pass that writes the cache; with a nearly clean first
//  chunk a copy of it is appended (own kv range, the next chunk's rotary positions, not
//  cached) and blended into its velocity.
static int
s_distill_step (magi1_dit_t *dit, const magi1_sched_t *s, const magi1_sample_args_t *a,
                magi1_dit_cache_t *cache, float *x, float *xw, int sp, int extra, int n,
                bool nearly_clean, float *tc, int64_t *kv, float *y, float *m, const float *t,
                int te, int dsps, int idx, int cs, int step, float *out, float *vel, char **err)
{
    const magi1_dit_config_t *cfg = magi1_dit_config (dit);
    int64_t C = a->C, F = a->F, plane = a->H * a->W, T = a->chunks * F;
    int64_t clip = F * (a->H / 2) * (a->W / 2), len = cfg->caption_len, dim = cfg->caption_dim;
    int nc = n + extra, copy = nearly_clean? 1: 0, total = nc + copy;
    if (copy) {
        //  xw holds nc chunks [C, nc*F, plane]: re-lay as [C, (nc+1)*F, plane] with the copy.
        for (int64_t c = C - 1; c >= 0; c--) {
            memmove (xw + c * total * F * plane, xw + c * nc * F * plane, (size_t) (nc * F * plane) * sizeof (float));
            memcpy (xw + (c * total + nc) * F * plane, xw + (c * total + extra) * F * plane,
                    (size_t) (F * plane) * sizeof (float));
        }
        tc [nc] = tc [extra];
        kv [2 * nc] = (int64_t) (sp + nc) * clip;
        kv [2 * nc + 1] = (int64_t) (sp + nc + 1) * clip;
        memcpy (y + (size_t) nc * len * dim, y + (size_t) extra * len * dim, (size_t) (len * dim) * sizeof (float));
        memcpy (m + (size_t) nc * len, m + (size_t) extra * len, (size_t) len * sizeof (float));
    }
    bool write = sp > 0 || extra;
    magi1_dit_call_t call = {
        .T = total * F, .H = a->H, .W = a->W, .chunks = total, .t = tc, .y = y, .mask = m,
        .frame_offset = (int64_t) sp * F, .cache_rows = (int64_t) sp * clip, .kv_range = kv,
        .write_rows = write? (int64_t) (total - copy) * clip: 0,
        .distill_dt = magi1_sched_distill_dt_at (s, idx),
    };
    if (magi1_dit_forward (dit, cache, xw, &call, out, err))
        return -1;
    if (a->observe)
        a->observe (a->observe_ctx, step, "cond", out, (size_t) (C * total * F * plane));
    for (int j = 0; j < n; j++) {
        int ti = (te - 1 - j) * dsps + idx;
        float dt = t [ti + 1] - t [ti];
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < F * plane; i++) {
                float v = out [(c * total + j + extra) * F * plane + i];
                if (copy && j == 0)
                    v = s->nearly_clean_blend * v
                      + (1.0f - s->nearly_clean_blend) * out [(c * total + nc) * F * plane + i];
                vel [(c * n + j) * F * plane + i] = v;
                x [(c * T + (int64_t) (cs + j) * F) * plane + i] += v * dt;
            }
    }
    if (a->observe) {
        a->observe (a->observe_ctx, step, "velocity", vel, (size_t) (C * n * F * plane));
        a->observe (a->observe_ctx, step, "x_after", x, (size_t) (C * T * plane));
    }
    return 0;
}

int
magi1_sample_steps_total (const magi1_sched_t *s, int chunks)
{
    return s->window_size > 0? (chunks + s->window_size - 1) * (s->num_steps / s->window_size): 0;
}

//  One forward step of the loop (stage, denoise step idx): its window and, per chunk p of
//  the nc it runs, the t and the first chunk its key range starts at.
typedef struct {
    int cs, n, te;              //  denoising chunks cs .. cs+n-1, te: t rows of the window
    int extra, sp, nc;          //  the clean previous chunk prepended (0/1), first chunk, chunks
    bool nearly_clean;          //  the first denoising chunk has t > 0.3
    int copy;                   //  distill: the appended copy of that chunk (0/1; own keys)
    int lo;                     //  the first chunk any of the call's key ranges starts at
} s_call_t;

static void
s_call (const magi1_sched_t *s, const float *t, int chunks, int stage, int idx, s_call_t *c,
        float *tc, int *kvlo)
{
    int W4 = s->window_size, steps = s->num_steps, dsps = steps / W4;
    int ce = stage + 1 < chunks? stage + 1: chunks;
    c->cs = stage - W4 + 1 > 0? stage - W4 + 1: 0;
    c->te = stage + 1 < W4? stage + 1: W4;
    c->n = ce - c->cs;
    c->extra = c->cs > 0 && idx == 0;
    c->sp = c->cs - c->extra;
    c->nc = c->n + c->extra;
    c->lo = chunks;
    float first_t = 0;
    for (int p = 0; p < c->nc; p++) {
        int j = p - c->extra, chunk = c->sp + p, kvn;
        float tp;
        if (j < 0) {
            tp = s->clean_t;
            kvn = s->clean_chunk_kvrange;
        }
        else {
            int ti = (c->te - 1 - j) * dsps + idx;
            tp = t [ti];
            if (j == 0)
                first_t = tp;
            kvn = s->noise2clean_kvrange [ti / (steps / 4)];
        }
        int lo = chunk + 1 - kvn > 0? chunk + 1 - kvn: 0;
        if (tc)
            tc [p] = tp;
        if (kvlo)
            kvlo [p] = lo;
        if (lo < c->lo)
            c->lo = lo;
    }
    c->nearly_clean = (double) first_t > s->nearly_clean_threshold;
    c->copy = s->cfg_number == 1 && c->nearly_clean? 1: 0;
}

//  The bounded KV cache's plan: keep_from [i] = the first chunk that forward step i or any
//  later one reads (the rows before it can go before step i); *cap = the chunks of rows the
//  cache must hold (the most, over the steps, from keep_from to the end of the step's own
//  keys). keep_all: keep_from 0, rows for every chunk (+ the distill copy). NULL: no memory.
static int *
s_plan (const magi1_sched_t *s, const float *t, int chunks, bool keep_all, int *cap)
{
    int dsps = s->num_steps / s->window_size, calls = magi1_sample_steps_total (s, chunks);
    int *keep_from = malloc ((size_t) calls * sizeof (int));
    if (!keep_from)
        return NULL;
    s_call_t c;
    for (int i = calls - 1, m = chunks; i >= 0; i--) {
        s_call (s, t, chunks, i / dsps, i % dsps, &c, NULL, NULL);
        m = c.lo < m? c.lo: m;
        keep_from [i] = keep_all? 0: m;
    }
    *cap = 0;
    for (int i = 0; i < calls; i++) {
        s_call (s, t, chunks, i / dsps, i % dsps, &c, NULL, NULL);
        int need = c.sp - keep_from [i] + c.nc + c.copy;
        *cap = need > *cap? need: *cap;
    }
    return keep_from;
}

static bool
s_sched_ok (const magi1_sched_t *s, int chunks)
{
    int W4 = s->window_size, steps = s->num_steps;
    return W4 >= 1 && steps >= 4 && steps % W4 == 0 && steps % 4 == 0 && chunks >= 1
        && (s->cfg_number == 1 || s->cfg_number == 3);
}

int
magi1_sample_cache_chunks (const magi1_sched_t *s, int chunks)
{
    assert (s);
    if (!s_sched_ok (s, chunks))
        return -1;
    float *t = malloc ((size_t) (s->num_steps + 1) * sizeof (float));
    if (!t)
        return -1;
    magi1_sched_grid (s, t);
    int cap = -1;
    int *keep_from = s_plan (s, t, chunks, false, &cap);
    free (t);
    if (!keep_from)
        return -1;
    free (keep_from);
    return cap;
}

//  After a forward step: the chunks that just got their last step, then progress/cancel.
//  0, -1 (a chunk callback failed) or -2 (stop asked).
static int
s_after_step (const magi1_sched_t *s, const magi1_sample_args_t *a, const int *done, int cs,
              int n, const float *x, int step)
{
    for (int j = 0; j < n; j++)
        if (done [cs + j] == s->num_steps && a->on_chunk && a->on_chunk (a->cb_ctx, cs + j, x))
            return -1;
    if (a->on_step && a->on_step (a->cb_ctx, step + 1, magi1_sample_steps_total (s, a->chunks)))
        return -2;
    return 0;
}

int
magi1_sample (magi1_dit_t *dit, const magi1_sched_t *s, const magi1_sample_args_t *a, float *x,
              char **err)
{
    assert (dit && s && a && x);
    const magi1_dit_config_t *cfg = magi1_dit_config (dit);
    int W4 = s->window_size, steps = s->num_steps;
    if (s->cfg_number != 3 && s->cfg_number != 1) {
        vdgx_set_error (err, "%s: cfg_number %d (3 or 1)", S_WHO, s->cfg_number);
        return -1;
    }
    bool distill = s->cfg_number == 1;
    if (!s_sched_ok (s, a->chunks) || a->C != cfg->out_channels) {
        vdgx_set_error (err, "%s: invalid schedule (steps %d, window %d, chunks %d)", S_WHO, steps, W4,
                        a->chunks);
        return -1;
    }
    int64_t C = a->C, F = a->F, plane = a->H * a->W, T = a->chunks * F;
    int64_t clip = F * (a->H / 2) * (a->W / 2), len = cfg->caption_len, dim = cfg->caption_dim;
    int dsps = steps / W4, maxn = W4 + 2, cap = 0;
    size_t win = (size_t) (C * maxn * F * plane);
    float *t = malloc ((size_t) (steps + 1) * sizeof (float));
    float *xw = malloc (win * sizeof (float)), *text = malloc (win * sizeof (float));
    float *pre = malloc (win * sizeof (float)), *unc = malloc (win * sizeof (float));
    float *vel = malloc (win * sizeof (float)), *xc = malloc ((size_t) (C * F * plane) * sizeof (float));
    float *y = malloc ((size_t) (maxn * len * dim) * sizeof (float));
    float *m = malloc ((size_t) (maxn * len) * sizeof (float));
    float *ny = malloc ((size_t) (maxn * len * dim) * sizeof (float));
    float *nm = calloc ((size_t) (maxn * len), sizeof (float));
    float *tc = malloc ((size_t) maxn * sizeof (float));
    int64_t *kv = malloc ((size_t) (2 * maxn) * sizeof (int64_t));
    int *kvlo = malloc ((size_t) maxn * sizeof (int));
    int *done = calloc ((size_t) a->chunks, sizeof (int));
    int *keep_from = NULL;
    magi1_dit_cache_t *cache = NULL;
    int rc = -1;
    if (t) {
        magi1_sched_grid (s, t);
        keep_from = s_plan (s, t, a->chunks, a->kv_keep_all, &cap);
    }
    if (!t || !xw || !text || !pre || !unc || !vel || !xc || !y || !m || !ny || !nm || !tc || !kv
    ||  !kvlo || !done || !keep_from) {
        vdgx_set_error (err, "%s: out of memory", S_WHO);
        goto done;
    }
    //  The KV cache holds the rows later chunks can still attend (cap chunks), not the video.
    if (!(cache = magi1_dit_cache_new (dit, (int64_t) cap * clip, err)))
        goto done;
    if (a->kv_tokens)
        *a->kv_tokens = (int64_t) cap * clip;
    for (int r = 0; r < maxn; r++) {
        memcpy (ny + (size_t) r * len * dim, magi1_dit_null_caption (dit), (size_t) (len * dim) * sizeof (float));
        for (int i = 0; i < S_NULL_ROWS && i < len; i++)
            nm [r * len + i] = 1;
    }
    int stages = a->chunks + W4 - 1, step = 0;
    for (int stage = 0; stage < stages; stage++) {
        for (int idx = 0; idx < dsps; idx++, step++) {
            s_call_t sc;
            s_call (s, t, a->chunks, stage, idx, &sc, tc, kvlo);
            int cs = sc.cs, n = sc.n, te = sc.te, extra = sc.extra, sp = sc.sp, nc = sc.nc;
            bool nearly_clean = sc.nearly_clean;
            //  Rows no step from this one on reads leave the cache.
            if (magi1_dit_cache_evict (cache, (int64_t) keep_from [step] * clip, err))
                goto done;
            //  The window: the clean previous chunk first when extra, then chunks cs..ce-1.
            s_frames (xw, nc * F, 0, x, T, (int64_t) sp * F, nc * F, C, plane);
            for (int p = 0; p < nc; p++) {
                int j = p - extra, chunk = sp + p;
                //  Absolute key rows: cat(cache[:sp*clip], own) numbered from the video's start.
                kv [2 * p] = (int64_t) kvlo [p] * clip;
                kv [2 * p + 1] = (int64_t) (chunk + 1) * clip;
                const float *cy = j < 0? ny: a->y + (size_t) chunk * len * dim;
                const float *cm = j < 0? nm: a->mask + (size_t) chunk * len;
                memcpy (y + (size_t) p * len * dim, cy, (size_t) (len * dim) * sizeof (float));
                memcpy (m + (size_t) p * len, cm, (size_t) len * sizeof (float));
            }
            int64_t rows = (int64_t) nc * clip - (nearly_clean? clip: 0);
            bool write = sp > 0 || extra;
            if (distill) {
                if (s_distill_step (dit, s, a, cache, x, xw, sp, extra, n, nearly_clean, tc, kv, y, m,
                                    t, te, dsps, idx, cs, step, text, vel, err))
                    goto done;
                for (int j = 0; j < n; j++)
                    done [cs + j]++;
                int stop = s_after_step (s, a, done, cs, n, x, step);
                if (stop) {
                    rc = stop;
                    goto done;
                }
                continue;
            }
            magi1_dit_call_t call = {
                .T = nc * F, .H = a->H, .W = a->W, .chunks = nc, .t = tc, .y = y, .mask = m,
                .caption_dropout = false, .frame_offset = (int64_t) sp * F,
                .cache_rows = (int64_t) sp * clip, .kv_range = kv,
            };
            if (magi1_dit_forward (dit, cache, xw, &call, text, err))
                goto done;
            call.y = ny;
            call.mask = nm;
            call.caption_dropout = true;
            call.write_rows = write? rows: 0;
            if (magi1_dit_forward (dit, cache, xw, &call, pre, err))
                goto done;
            size_t wn = (size_t) (C * nc * F * plane);
            if (a->observe) {
                a->observe (a->observe_ctx, step, "cond_text", text, wn);
                a->observe (a->observe_ctx, step, "cond_pre", pre, wn);
            }
            //  Each denoising chunk alone, null caption, no cache.
            for (int j = 0; j < n; j++) {
                s_frames (xc, F, 0, xw, nc * F, (int64_t) (j + extra) * F, F, C, plane);
                magi1_dit_call_t one = {
                    .T = F, .H = a->H, .W = a->W, .chunks = 1, .t = tc + j + extra, .y = ny, .mask = nm,
                    .caption_dropout = true,
                };
                if (magi1_dit_forward (dit, NULL, xc, &one, unc + (size_t) j * C * F * plane, err))
                    goto done;
            }
            if (a->observe)
                a->observe (a->observe_ctx, step, "uncond", unc, (size_t) (n * C * F * plane));
            //  Guidance per chunk, then x += v * dt.
            for (int j = 0; j < n; j++) {
                float p, st, tj = tc [j + extra];
                magi1_sched_cfg (s, tj, &p, &st);
                int ti = (te - 1 - j) * dsps + idx;
                float dt = t [ti + 1] - t [ti];
                for (int64_t c = 0; c < C; c++)
                    for (int64_t i = 0; i < F * plane; i++) {
                        size_t wi = (size_t) ((c * nc + j + extra) * F * plane + i);
                        size_t vi = (size_t) ((c * n + j) * F * plane + i);
                        float u = unc [(size_t) (j * C + c) * F * plane + i];
                        float v = (1.0f - p) * u + (p - st) * pre [wi] + st * text [wi];
                        vel [vi] = v;
                        x [(c * T + (int64_t) (cs + j) * F) * plane + i] += v * dt;
                    }
                done [cs + j]++;
            }
            if (a->observe) {
                a->observe (a->observe_ctx, step, "velocity", vel, (size_t) (C * n * F * plane));
                a->observe (a->observe_ctx, step, "x_after", x, (size_t) (C * T * plane));
            }
            int stop = s_after_step (s, a, done, cs, n, x, step);
            if (stop) {
                rc = stop;
                goto done;
            }
        }
    }
    for (int i = 0; i < a->chunks; i++)
        if (done [i] != steps) {
            vdgx_set_error (err, "%s: chunk %d denoised %d times, not %d", S_WHO, i, done [i], steps);
            goto done;
        }
    rc = 0;
done:
    magi1_dit_cache_destroy (&cache);
    free (t); free (xw); free (text); free (pre); free (unc); free (vel); free (xc);
    free (y); free (m); free (ny); free (nm); free (tc); free (kv); free (kvlo); free (done);
    free (keep_from);
    return rc;
}
