/*  refcheck.c - the helpers every refcheck part uses: cached vector files, loading stored
    tensors, and the tolerance rule (CPU: elementwise atol + rtol*|want|; GPU: relative norm).
*/
#include "refcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct s_file_t {
    char *name;
    vdgx_ckpt_t *ckpt;
    struct s_file_t *next;
} s_file_t;

vdgx_ckpt_t *
vdgx_refcheck_file (vdgx_refcheck_t *rc, const char *file)
{
    for (s_file_t *f = (s_file_t *) rc->files; f; f = f->next)
        if (strcmp (f->name, file) == 0)
            return f->ckpt;
    size_t len = strlen (rc->dir) + strlen (file) + 2;
    char *path = (char *) malloc (len);
    if (!path)
        return NULL;
    snprintf (path, len, "%s/%s", rc->dir, file);
    char *err = NULL;
    vdgx_ckpt_t *ckpt = vdgx_ckpt_open (path, &err);
    if (!ckpt) {
        fprintf (stderr, "refcheck: cannot open %s: %s\n", path, err? err: "unknown error");
        free (err);
        free (path);
        return NULL;
    }
    free (path);
    s_file_t *f = (s_file_t *) calloc (1, sizeof (s_file_t));
    if (!f || !(f->name = strdup (file))) {
        free (f);
        vdgx_ckpt_destroy (&ckpt);
        return NULL;
    }
    f->ckpt = ckpt;
    f->next = (s_file_t *) rc->files;
    rc->files = f;
    return ckpt;
}

void
vdgx_refcheck_close (vdgx_refcheck_t *rc)
{
    s_file_t *f = (s_file_t *) rc->files;
    while (f) {
        s_file_t *next = f->next;
        vdgx_ckpt_destroy (&f->ckpt);
        free (f->name);
        free (f);
        f = next;
    }
    rc->files = NULL;
}

static const vdgx_ckpt_tensor_t *
s_find (vdgx_refcheck_t *rc, const char *file, const char *name, int64_t *shape, int *ndim,
        size_t *numel)
{
    vdgx_ckpt_t *ckpt = vdgx_refcheck_file (rc, file);
    if (!ckpt)
        return NULL;
    const vdgx_ckpt_tensor_t *t = vdgx_ckpt_find (ckpt, name);
    if (!t) {
        fprintf (stderr, "refcheck: %s has no tensor '%s'\n", file, name);
        return NULL;
    }
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t) t->shape [i];
    if (shape)
        memcpy (shape, t->shape, sizeof (int64_t) * (size_t) t->ndim);
    if (ndim)
        *ndim = t->ndim;
    if (numel)
        *numel = n;
    return t;
}

float *
vdgx_refcheck_load (vdgx_refcheck_t *rc, const char *file, const char *name, int64_t *shape,
                    int *ndim, size_t *numel)
{
    size_t n = 0;
    const vdgx_ckpt_tensor_t *t = s_find (rc, file, name, shape, ndim, &n);
    if (!t)
        return NULL;
    float *dst = (float *) malloc ((n? n: 1) * sizeof (float));
    if (!dst)
        return NULL;
    char *err = NULL;
    if (vdgx_ckpt_read_f32 (t, dst, &err)) {
        fprintf (stderr, "refcheck: %s:%s: %s\n", file, name, err? err: "cannot read");
        free (err);
        free (dst);
        return NULL;
    }
    if (numel)
        *numel = n;
    return dst;
}

int64_t *
vdgx_refcheck_load_i64 (vdgx_refcheck_t *rc, const char *file, const char *name,
                        int64_t *shape, int *ndim, size_t *numel)
{
    size_t n = 0;
    const vdgx_ckpt_tensor_t *t = s_find (rc, file, name, shape, ndim, &n);
    if (!t)
        return NULL;
    size_t esize = t->dtype == VDGX_DTYPE_I64? 8: t->dtype == VDGX_DTYPE_I32? 4:
                   t->dtype == VDGX_DTYPE_U8? 1: 0;
    if (!esize || t->nbytes != n * esize) {
        fprintf (stderr, "refcheck: %s:%s: expected an integer tensor, got %s\n", file, name,
                 vdgx_dtype_name (t->dtype));
        return NULL;
    }
    int64_t *dst = (int64_t *) malloc ((n? n: 1) * sizeof (int64_t));
    if (!dst)
        return NULL;
    //  The mapped data need not be aligned for its type: copy bytewise.
    const unsigned char *src = (const unsigned char *) t->data;
    for (size_t i = 0; i < n; i++) {
        if (esize == 8) {
            int64_t v;
            memcpy (&v, src + 8 * i, 8);
            dst [i] = v;
        }
        else
        if (esize == 4) {
            int32_t v;
            memcpy (&v, src + 4 * i, 4);
            dst [i] = v;
        }
        else
            dst [i] = src [i];
    }
    if (numel)
        *numel = n;
    return dst;
}

int
vdgx_refcheck_compare (vdgx_refcheck_t *rc, const char *label, const float *got,
                       const float *want, size_t n)
{
    double max_abs = 0, max_rel = 0, worst = 0;     //  worst = max |d| / (atol + rtol|want|)
    double diff2 = 0, want2 = 0;
    size_t bad = 0, first_bad = 0;
    bool nonfinite = false;
    for (size_t i = 0; i < n; i++) {
        double g = got [i], w = want [i];
        if (!isfinite (g) && !(isinf (g) && g == w)) {
            nonfinite = true;
            if (!bad++)
                first_bad = i;
            continue;
        }
        double d = fabs (g - w);
        if (d > max_abs)
            max_abs = d;
        if (w != 0 && d / fabs (w) > max_rel)
            max_rel = d / fabs (w);
        double ratio = d / (rc->atol + rc->rtol * fabs (w));
        if (ratio > worst)
            worst = ratio;
        if (d > rc->atol + rc->rtol * fabs (w) && !bad++)
            first_bad = i;
        diff2 += d * d;
        want2 += w * w;
    }
    double relnorm = want2 > 0? sqrt (diff2 / want2): sqrt (diff2);
    bool pass;
    if (rc->gpu) {
        pass = !nonfinite && relnorm < rc->relnorm;
        printf ("  %-4s %-44s n=%-8zu max_abs=%.3e max_rel=%.3e relnorm=%.3e  (tol relnorm < %g)\n",
                pass? "PASS": "FAIL", label, n, max_abs, max_rel, relnorm, rc->relnorm);
    }
    else {
        pass = bad == 0;
        printf ("  %-4s %-44s n=%-8zu max_abs=%.3e max_rel=%.3e worst=%.3f  (tol %g + %g*|want|)\n",
                pass? "PASS": "FAIL", label, n, max_abs, max_rel, worst, rc->atol, rc->rtol);
    }
    if (!pass && bad)
        printf ("       %zu element(s) out of tolerance%s; first at %zu: got %.8g want %.8g\n",
                bad, nonfinite? " (non-finite values)": "", first_bad,
                (double) got [first_bad], (double) want [first_bad]);
    rc->checks++;
    if (!pass)
        rc->failures++;
    fflush (stdout);
    return pass? 0: -1;
}

int
vdgx_refcheck_compare_stored (vdgx_refcheck_t *rc, const char *label, const float *got,
                              size_t n, const char *file, const char *name)
{
    size_t numel = 0;
    float *want = vdgx_refcheck_load (rc, file, name, NULL, NULL, &numel);
    if (!want || numel != n) {
        if (want)
            printf ("  FAIL %-44s size mismatch: got %zu elements, stored %s has %zu\n",
                    label, n, name, numel);
        else
            printf ("  FAIL %-44s stored tensor %s:%s unavailable\n", label, file, name);
        free (want);
        rc->checks++;
        rc->failures++;
        return -1;
    }
    int rv = vdgx_refcheck_compare (rc, label, got, want, n);
    free (want);
    return rv;
}

int
vdgx_refcheck_compare_tensor (vdgx_refcheck_t *rc, const char *label, const vdgx_tensor_t *got,
                              const char *file, const char *name)
{
    size_t n = (size_t) vdgx_tensor_numel (got);
    float *host = (float *) malloc ((n? n: 1) * sizeof (float));
    if (!host || vdgx_tensor_to_f32 (rc->backend, got, host)) {
        printf ("  FAIL %-44s cannot read the result back: %s\n", label,
                vdgx_backend_error (rc->backend));
        free (host);
        rc->checks++;
        rc->failures++;
        return -1;
    }
    int rv = vdgx_refcheck_compare_stored (rc, label, host, n, file, name);
    free (host);
    return rv;
}

int
vdgx_refcheck_compare_rows (vdgx_refcheck_t *rc, const char *label, const float *got,
                            const float *want, size_t outer, size_t rows, size_t inner,
                            const uint8_t *row_mask)
{
    size_t kept = 0;
    for (size_t r = 0; r < rows; r++)
        kept += row_mask [r] != 0;
    size_t n = outer * kept * inner;
    float *g = (float *) malloc ((n? n: 1) * sizeof (float));
    float *w = (float *) malloc ((n? n: 1) * sizeof (float));
    int rv = -1;
    if (g && w) {
        size_t at = 0;
        for (size_t o = 0; o < outer; o++)
            for (size_t r = 0; r < rows; r++) {
                if (!row_mask [r])
                    continue;
                memcpy (g + at, got + (o * rows + r) * inner, inner * sizeof (float));
                memcpy (w + at, want + (o * rows + r) * inner, inner * sizeof (float));
                at += inner;
            }
        rv = vdgx_refcheck_compare (rc, label, g, w, n);
    }
    free (g);
    free (w);
    return rv;
}

int
vdgx_refcheck_collect_frame (void *arg, int index, const float *chw, int width, int height)
{
    vdgx_refcheck_frames_t *c = (vdgx_refcheck_frames_t *) arg;
    if (index != c->got || index >= c->frames) {
        c->bad = true;
        return -1;
    }
    size_t hw = (size_t) width * (size_t) height;
    for (int ch = 0; ch < 3; ch++)
        memcpy (c->video + ((size_t) ch * (size_t) c->frames + (size_t) index) * hw,
                chw + ch * hw, hw * sizeof (float));
    c->got++;
    return 0;
}
