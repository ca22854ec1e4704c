/*  bench_gemma3.c - vdgx-bench-gemma3: Gemma 3 text encoder time and memory for one LTX-2
    prompt (1024 tokens, left-padded, every hidden state out) with random weights of the real
    Gemma-3-12B shapes (hidden 3840, 16 query / 8 kv heads of 256, ffn 15360, vocab 262208) at
    reduced depth, in BF16 and FP8 (quantized at load) weight formats.

    vdgx-bench-gemma3 [--device cpu|cuda[:N]] [--layers N] [--tokens L] [--valid n]
                      [--wfmt bf16,fp8] [--reps R] [--dir DIR]
                      [--hidden D --heads H --kv-heads K --head-dim d --ffn F --vocab V]

    The checkpoint (HF layout, BF16) is written by a child process into DIR (default a
    temporary directory, removed at the end), so this process's peak RSS counts only loading
    and encoding. Layers default to 2 on the CPU and 48 on a GPU; time and weights scale with
    the layers, so the per-layer figures and their 48-layer extrapolation are printed.
*/
#include <czmq.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gemma3.h"
#include "vdgx_backend.h"

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: vdgx-bench-gemma3 [--device cpu|cuda[:N]] [--layers N] [--tokens L] [--valid n]\n"
        "                         [--wfmt bf16,fp8] [--reps R] [--dir DIR]\n"
        "                         [--hidden D --heads H --kv-heads K --head-dim d --ffn F --vocab V]\n");
}

//  Loads the checkpoint in wfmt and times the encode; prints the figures. Exit status.
static int
s_run (const gemma3_config_t *cfg, const char *dir, const char *device, bool gpu, const char *name,
       vdgx_wfmt_t wfmt, const int32_t *ids, const uint8_t *mask, int tokens, int reps)
{
    char *err = NULL;
    vdgx_backend_t *b = vdgx_backend_new (device, gpu? VDGX_DTYPE_BF16: VDGX_DTYPE_F32, &err);
    if (!b) {
        fprintf (stderr, "vdgx-bench-gemma3: %s\n", err? err: "no backend");
        free (err);
        return 1;
    }
    int64_t t0 = zclock_usecs ();
    gemma3_t *g = gemma3_new (dir, b, wfmt, &err);
    if (!g) {
        fprintf (stderr, "vdgx-bench-gemma3: %s\n", err? err: "cannot load");
        free (err);
        vdgx_backend_destroy (&b);
        return 1;
    }
    double load_s = (zclock_usecs () - t0) / 1e6;
    double best = 1e30;
    int rc = 0;
    for (int r = 0; r < reps && rc == 0; r++) {
        vdgx_tensor_t hidden;
        t0 = zclock_usecs ();
        if (gemma3_forward (g, ids, mask, 1, tokens, &hidden, NULL, NULL)) {
            fprintf (stderr, "vdgx-bench-gemma3: %s\n", gemma3_error (g));
            rc = 1;
            break;
        }
        //  reading one value back waits for the device
        float probe;
        vdgx_tensor_t one;
        const int64_t shape [1] = { 1 };
        vdgx_tensor_init (&one, hidden.dtype, 1, shape, hidden.data, hidden.device);
        vdgx_tensor_to_f32 (b, &one, &probe);
        double s = (zclock_usecs () - t0) / 1e6;
        best = s < best? s: best;
        vdgx_tensor_release (b, &hidden);
    }
    if (rc == 0) {
        struct rusage ru;
        getrusage (RUSAGE_SELF, &ru);
        double wgb = gemma3_weight_bytes (g) / 1e9, per_layer = best / cfg->layers;
        double act_gb = (double) (cfg->layers + 1) * tokens * cfg->hidden
                      * vdgx_dtype_size (vdgx_backend_act_dtype (b)) / 1e9;
        printf ("  %-5s load %.1f s; encode %.3f s (best of %d) = %.3f s/layer -> %.1f s at 48 layers\n",
                name, load_s, best, reps, per_layer, per_layer * 48);
        printf ("        weights %.2f GB (%.2f GB at 48 layers), hidden states out %.2f GB, "
                "backend peak %.2f GB, process peak RSS %.2f GB\n", wgb,
                wgb / cfg->layers * 48, act_gb, vdgx_backend_peak_bytes (b) / 1e9,
                ru.ru_maxrss / 1e6);
        fflush (stdout);
    }
    gemma3_destroy (&g);
    vdgx_backend_destroy (&b);
    return rc;
}

int
main (int argc, char *argv [])
{
    gemma3_config_t cfg;
    gemma3_config_defaults (&cfg);
    cfg.vocab = 262208;
    cfg.hidden = 3840;
    cfg.layers = 0;
    cfg.heads = 16;
    cfg.kv_heads = 8;
    cfg.head_dim = 256;
    cfg.ffn = 15360;
    const char *device = "cpu", *wfmts = "bf16,fp8", *dir_arg = NULL;
    int tokens = 1024, valid = 0, reps = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i], *v = i + 1 < argc? argv [i + 1]: NULL;
        if (!v) {
            s_usage ();
            return 2;
        }
        if (strcmp (a, "--device") == 0) device = v;
        else if (strcmp (a, "--layers") == 0) cfg.layers = atoi (v);
        else if (strcmp (a, "--tokens") == 0) tokens = atoi (v);
        else if (strcmp (a, "--valid") == 0) valid = atoi (v);
        else if (strcmp (a, "--wfmt") == 0) wfmts = v;
        else if (strcmp (a, "--reps") == 0) reps = atoi (v);
        else if (strcmp (a, "--dir") == 0) dir_arg = v;
        else if (strcmp (a, "--hidden") == 0) cfg.hidden = atoi (v);
        else if (strcmp (a, "--heads") == 0) cfg.heads = atoi (v);
        else if (strcmp (a, "--kv-heads") == 0) cfg.kv_heads = atoi (v);
        else if (strcmp (a, "--head-dim") == 0) cfg.head_dim = atoi (v);
        else if (strcmp (a, "--ffn") == 0) cfg.ffn = atoi (v);
        else if (strcmp (a, "--vocab") == 0) cfg.vocab = atoi (v);
        else {
            s_usage ();
            return 2;
        }
        i++;
    }
    bool gpu = strncmp (device, "cpu", 3) != 0;
    if (cfg.layers <= 0)
        cfg.layers = gpu? 48: 2;
    if (valid <= 0 || valid > tokens)
        valid = tokens;
    if (tokens < 1 || reps < 1 || cfg.hidden < 2 || cfg.vocab < 3) {
        s_usage ();
        return 2;
    }
    char tmpl [] = "/tmp/vdgx-bench-gemma3-XXXXXX";
    const char *dir = dir_arg? dir_arg: mkdtemp (tmpl);
    if (!dir) {
        fprintf (stderr, "vdgx-bench-gemma3: cannot make a temporary directory\n");
        return 1;
    }
    printf ("Gemma 3 text encoder: hidden %d, %d layers, %d/%d heads x %d, ffn %d, vocab %d; "
            "%d tokens (%d valid, left-padded); device %s\n", cfg.hidden, cfg.layers, cfg.heads,
            cfg.kv_heads, cfg.head_dim, cfg.ffn, cfg.vocab, tokens, valid, device);
    fflush (stdout);
    int64_t t0 = zclock_usecs ();
    pid_t pid = fork ();
    if (pid == 0) {
        char *err = NULL;
        int rc = gemma3_write_random (dir, &cfg, 1, false, &err);
        if (rc)
            fprintf (stderr, "vdgx-bench-gemma3: %s\n", err? err: "cannot write the checkpoint");
        _exit (rc? 1: 0);
    }
    int status = 0;
    if (pid < 0 || waitpid (pid, &status, 0) != pid || !WIFEXITED (status) || WEXITSTATUS (status)) {
        fprintf (stderr, "vdgx-bench-gemma3: writing the random checkpoint failed\n");
        return 1;
    }
    printf ("  random BF16 checkpoint written in %.1f s\n", (zclock_usecs () - t0) / 1e6);

    int32_t *ids = (int32_t *) malloc (sizeof (int32_t) * (size_t) tokens);
    uint8_t *mask = (uint8_t *) malloc ((size_t) tokens);
    for (int i = 0; i < tokens; i++) {
        bool pad = i < tokens - valid;
        ids [i] = pad? 0: i == tokens - valid? 2: 3 + (int) ((i * 2654435761u) % (unsigned) (cfg.vocab - 3));
        mask [i] = !pad;
    }
    int rc = 0;
    char list [64];
    snprintf (list, sizeof (list), "%s", wfmts);
    for (char *save = NULL, *name = strtok_r (list, ",", &save); name && rc == 0;
         name = strtok_r (NULL, ",", &save)) {
        vdgx_wfmt_t wfmt;
        if (vdgx_wfmt_from_name (name, &wfmt)) {
            fprintf (stderr, "vdgx-bench-gemma3: unknown weight format '%s'\n", name);
            rc = 2;
            break;
        }
        //  each format in a child of its own, so its peak RSS is its own
        fflush (stdout);
        pid = fork ();
        if (pid == 0)
            _exit (s_run (&cfg, dir, device, gpu, name, wfmt, ids, mask, tokens, reps));
        if (pid < 0 || waitpid (pid, &status, 0) != pid || !WIFEXITED (status) || WEXITSTATUS (status))
            rc = 1;
    }
    free (ids);
    free (mask);
    if (!dir_arg) {
        zdir_t *d = zdir_new (dir, NULL);
        if (d)
            zdir_remove (d, true);
        zdir_destroy (&d);
    }
    return rc;
}
