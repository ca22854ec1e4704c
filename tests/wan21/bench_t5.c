/*  bench_t5.c - vdgx-bench-t5: umT5 encoder time for a 512-token prompt with random weights
    of the real shapes, in BF16 and FP8 weight formats. The weights are built in memory as a
    BF16 safetensors image, written to a temporary file ($TMPDIR or /tmp; sparse: the unused
    embedding rows are holes; unlinked once open) and the image freed, so the engine loads
    them as it loads a real checkpoint and the process holds one copy (the peak RSS printed
    is the engine's).

    vdgx-bench-t5 [--device cpu|cuda[:N]] [--layers N] [--tokens L] [--wfmt bf16,fp8]
                  [--act bf16|f32] [--reps R] [--dim D --ffn F --heads H --vocab V]

    Layers default to 24 on a GPU and 2 on the CPU; time scales linearly with layers, so the
    per-layer time and its 24-layer extrapolation are printed.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "vdgx_backend.h"
#include "vdgx_ckpt.h"
#include "vdgx_t5.h"

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    char name [96];
    int ndim;
    int64_t shape [2];
    size_t offset, bytes;
    float scale, offset_value;
} s_entry_t;

//  Builds a BF16 safetensors image of an umT5 encoder with official names. The embedding is
//  calloc'ed (untouched pages cost nothing) and only rows < used_rows are filled; *filled is
//  the length of the image up to the end of those rows (the rest is zeros).
static unsigned char *
s_build_image (int vocab, int dim, int ffn, int heads, int layers, int used_rows, size_t *size,
               size_t *filled)
{
    int count = 2 + layers * 10;
    s_entry_t *e = (s_entry_t *) calloc ((size_t) count, sizeof (s_entry_t));
    int n = 0;
    size_t off = 0;
    const float wscale = 1.0f / sqrtf ((float) dim), fscale = 1.0f / sqrtf ((float) ffn);
    for (int l = 0; l < layers; l++) {
        struct { const char *suffix; int64_t d0, d1; float scale, base; } t [] = {
            { "norm1.weight", dim, 0, 0.1f, 1.0f }, { "attn.q.weight", dim, dim, wscale, 0 },
            { "attn.k.weight", dim, dim, wscale, 0 }, { "attn.v.weight", dim, dim, wscale, 0 },
            { "attn.o.weight", dim, dim, wscale, 0 }, { "norm2.weight", dim, 0, 0.1f, 1.0f },
            { "ffn.gate.0.weight", ffn, dim, wscale, 0 }, { "ffn.fc1.weight", ffn, dim, wscale, 0 },
            { "ffn.fc2.weight", dim, ffn, fscale, 0 },
            { "pos_embedding.embedding.weight", 32, heads, 1.0f, 0 } };
        for (size_t j = 0; j < sizeof (t) / sizeof (t [0]); j++, n++) {
            snprintf (e [n].name, sizeof (e [n].name), "blocks.%d.%s", l, t [j].suffix);
            e [n].ndim = t [j].d1? 2: 1;
            e [n].shape [0] = t [j].d0;
            e [n].shape [1] = t [j].d1;
            e [n].bytes = (size_t) t [j].d0 * (t [j].d1? t [j].d1: 1) * 2;
            e [n].scale = t [j].scale;
            e [n].offset_value = t [j].base;
            e [n].offset = off;
            off += e [n].bytes;
        }
    }
    snprintf (e [n].name, sizeof (e [n].name), "norm.weight");
    e [n].ndim = 1, e [n].shape [0] = dim, e [n].bytes = (size_t) dim * 2;
    e [n].scale = 0.1f, e [n].offset_value = 1.0f, e [n].offset = off;
    off += e [n++].bytes;
    snprintf (e [n].name, sizeof (e [n].name), "token_embedding.weight");
    e [n].ndim = 2, e [n].shape [0] = vocab, e [n].shape [1] = dim;
    e [n].bytes = (size_t) vocab * dim * 2, e [n].scale = 1.0f, e [n].offset = off;
    off += e [n++].bytes;

    size_t hcap = (size_t) n * 160 + 64;
    char *header = (char *) malloc (hcap);
    size_t hlen = (size_t) snprintf (header, hcap, "{");
    for (int i = 0; i < n; i++) {
        char shape [64];
        if (e [i].ndim > 1)
            snprintf (shape, sizeof (shape), "%lld,%lld", (long long) e [i].shape [0],
                      (long long) e [i].shape [1]);
        else
            snprintf (shape, sizeof (shape), "%lld", (long long) e [i].shape [0]);
        hlen += (size_t) snprintf (header + hlen, hcap - hlen,
            "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%s],\"data_offsets\":[%zu,%zu]}",
            i? ",": "", e [i].name, shape, e [i].offset, e [i].offset + e [i].bytes);
    }
    hlen += (size_t) snprintf (header + hlen, hcap - hlen, "}");
    while ((8 + hlen) % 8)
        header [hlen++] = ' ';
    *size = 8 + hlen + off;
    unsigned char *img = (unsigned char *) calloc (1, *size);
    if (!img) {
        free (header);
        free (e);
        return NULL;
    }
    *filled = 8 + hlen + e [n - 1].offset + (size_t) used_rows * dim * 2;
    uint64_t h64 = hlen;
    memcpy (img, &h64, 8);
    memcpy (img + 8, header, hlen);
    unsigned char *data = img + 8 + hlen;
    uint32_t rng = 2024;
    for (int i = 0; i < n; i++) {
        size_t numel = e [i].bytes / 2;
        if (strcmp (e [i].name, "token_embedding.weight") == 0)
            numel = (size_t) used_rows * dim;
        uint16_t *p = (uint16_t *) (data + e [i].offset);
        for (size_t k = 0; k < numel; k++) {
            rng = rng * 1664525u + 1013904223u;
            float u = ((rng >> 8) * (1.0f / 16777216.0f)) * 2.0f - 1.0f;
            p [k] = vdgx_f32_to_bf16 (e [i].offset_value + e [i].scale * u);
        }
    }
    free (header);
    free (e);
    return img;
}

int
main (int argc, char *argv [])
{
    const char *device = "cpu", *wfmts = "bf16,fp8", *act_name = NULL;
    int layers = -1, tokens = 512, reps = 2, dim = 4096, ffn = 10240, heads = 64, vocab = 256384;
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i], *v = i + 1 < argc? argv [i + 1]: NULL;
        if (!v) {
            fprintf (stderr, "vdgx-bench-t5: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp (a, "--device") == 0) device = v;
        else if (strcmp (a, "--wfmt") == 0) wfmts = v;
        else if (strcmp (a, "--act") == 0) act_name = v;
        else if (strcmp (a, "--layers") == 0) layers = atoi (v);
        else if (strcmp (a, "--tokens") == 0) tokens = atoi (v);
        else if (strcmp (a, "--reps") == 0) reps = atoi (v);
        else if (strcmp (a, "--dim") == 0) dim = atoi (v);
        else if (strcmp (a, "--ffn") == 0) ffn = atoi (v);
        else if (strcmp (a, "--heads") == 0) heads = atoi (v);
        else if (strcmp (a, "--vocab") == 0) vocab = atoi (v);
        else {
            fprintf (stderr, "usage: vdgx-bench-t5 [--device cpu|cuda] [--layers N] [--tokens L] "
                             "[--wfmt bf16,fp8] [--act bf16|f32] [--reps R] "
                             "[--dim D --ffn F --heads H --vocab V]\n");
            return 2;
        }
    }
    bool gpu = strncmp (device, "cpu", 3) != 0;
    if (layers < 0)
        layers = gpu? 24: 2;
    if (layers < 1 || tokens < 1 || reps < 1 || dim < 1 || ffn < 1 || heads < 1 || dim % heads
     || vocab < 2) {
        fprintf (stderr, "vdgx-bench-t5: bad sizes\n");
        return 2;
    }
    //  Activations: the backend's reduced precision on a GPU (bf16), f32 on the CPU.
    vdgx_dtype_t act = gpu? VDGX_DTYPE_BF16: VDGX_DTYPE_F32;
    if (act_name && (vdgx_dtype_from_name (strcmp (act_name, "bf16") == 0? "BF16":
                                           strcmp (act_name, "f32") == 0? "F32": "?", &act))) {
        fprintf (stderr, "vdgx-bench-t5: --act is bf16 or f32\n");
        return 2;
    }
    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new (device, act, &err);
    if (!b) {
        fprintf (stderr, "vdgx-bench-t5: %s\n", err);
        free (err);
        return 1;
    }
    int used_rows = vocab < 4096? vocab: 4096;
    double t0 = s_now ();
    size_t size = 0, filled = 0;
    unsigned char *img = s_build_image (vocab, dim, ffn, heads, layers, used_rows, &size, &filled);
    if (!img) {
        fprintf (stderr, "vdgx-bench-t5: out of memory for %d layers\n", layers);
        return 1;
    }
    char path [4096];
    const char *tmp = getenv ("TMPDIR");
    snprintf (path, sizeof (path), "%s/vdgx-bench-t5-XXXXXX", tmp && *tmp? tmp: "/tmp");
    int fd = mkstemp (path);
    bool written = fd >= 0;
    for (size_t done = 0; written && done < filled; ) {
        ssize_t w = write (fd, img + done, filled - done);
        if (w <= 0)
            written = false;
        else
            done += (size_t) w;
    }
    written = written && ftruncate (fd, (off_t) size) == 0;
    if (fd >= 0)
        close (fd);
    free (img);
    if (!written) {
        fprintf (stderr, "vdgx-bench-t5: cannot write the checkpoint to %s\n", path);
        if (fd >= 0)
            unlink (path);
        return 1;
    }
    printf ("umT5 bench on %s (%s activations): dim %d, ffn %d, %d heads, vocab %d, %d layer(s), "
            "%d tokens (random weights built in %.1f s, %.2f GB image)\n", vdgx_backend_name (b),
            vdgx_dtype_name (act), dim, ffn, heads, vocab, layers, tokens, s_now () - t0, size / 1e9);
    int32_t *ids = (int32_t *) malloc (sizeof (int32_t) * (size_t) tokens);
    for (int i = 0; i < tokens; i++)
        ids [i] = (int32_t) ((i * 7919 + 3) % used_rows);
    ids [tokens - 1] = 1;

    //  FLOPs per layer: q,k,v,o and the three FFN matrices, plus QK^T and PV.
    double L = tokens;
    double layer_flops = 2.0 * L * (4.0 * dim * dim + 3.0 * dim * ffn) + 4.0 * L * L * dim;
    int status = 0;
    char list [64];
    snprintf (list, sizeof (list), "%s", wfmts);
    for (char *tok = strtok (list, ","); tok; tok = strtok (NULL, ",")) {
        vdgx_wfmt_t fmt;
        if (vdgx_wfmt_from_name (tok, &fmt)) {
            fprintf (stderr, "vdgx-bench-t5: unknown weight format '%s'\n", tok);
            status = 2;
            continue;
        }
        vdgx_ckpt_t *ckpt = vdgx_ckpt_open (path, &err);
        if (!ckpt) {
            fprintf (stderr, "vdgx-bench-t5: image: %s\n", err);
            free (err);
            status = 1;
            break;
        }
        t0 = s_now ();
        vdgx_t5_t *t5 = vdgx_t5_new_from_ckpt (&ckpt, b, fmt, &err);
        if (!t5) {
            fprintf (stderr, "vdgx-bench-t5: %s: %s\n", tok, err);
            free (err);
            status = 1;
            continue;
        }
        double load = s_now () - t0;
        //  Warm-up (pools, caches, bias tables), then timed repetitions.
        vdgx_tensor_t out;
        double best = 1e30;
        for (int r = 0; r <= reps && status == 0; r++) {
            double s = s_now ();
            if (vdgx_t5_forward (t5, ids, NULL, 1, tokens, &out)) {
                fprintf (stderr, "vdgx-bench-t5: forward: %s\n", vdgx_t5_error (t5));
                status = 1;
                break;
            }
            float probe;
            vdgx_tensor_t first;
            const int64_t one [1] = { 1 };
            vdgx_tensor_init (&first, out.dtype, 1, one, out.data, out.device);
            vdgx_tensor_to_f32 (b, &first, &probe);     //  waits for the device
            double el = s_now () - s;
            if (r > 0 && el < best)
                best = el;
            if (!isfinite (probe)) {
                fprintf (stderr, "vdgx-bench-t5: non-finite output\n");
                status = 1;
            }
            vdgx_tensor_release (b, &out);
        }
        if (status == 0) {
            double per_layer = best / layers;
            struct rusage ru;
            getrusage (RUSAGE_SELF, &ru);
            printf ("  %-5s load %6.1f s  forward %8.2f ms  per layer %7.2f ms  %7.1f GFLOP/s"
                    "  -> 24 layers %8.1f ms\n", tok, load, best * 1e3, per_layer * 1e3,
                    layer_flops / per_layer / 1e9, per_layer * 24 * 1e3);
            printf ("        weights %.2f GB (%.2f GB at 24 layers), backend peak %.2f GB, "
                    "max RSS %.2f GB\n", vdgx_t5_weight_bytes (t5) / 1e9,
                    vdgx_t5_weight_bytes (t5) / (double) layers * 24 / 1e9,
                    vdgx_backend_peak_bytes (b) / 1e9, ru.ru_maxrss / 1e6);
        }
        vdgx_t5_destroy (&t5);
    }
    free (ids);
    unlink (path);
    vdgx_backend_destroy (&b);
    return status;
}
