/*  vdgx-refcheck - runs the comparisons a reference-vector directory describes.

    vdgx-refcheck MODEL DIR [--part PART|all] [--device cpu|cuda[:N]] [-v]
                  [--atol X] [--rtol X] [--relnorm X]
    MODEL / PART: wan21 t5|dit|vae|sampling, t5v11 encoder, gemma3 decoder, ltx2 text|dit,
    ltx23 text|dit, wan21-i2v clip|vae_encode|dit|pipeline; ltx2|ltx23 video_vae|audio|sampling.

    Parts live in their own files (refcheck_<model>_<part>.c) and are declared weak here:
    a part whose file is not in the build resolves to NULL and is reported as
    "not built" (a failure), so the tool links whichever parts have landed.
    Exit status: 0 every check passed, 1 a check failed or a part could not run, 2 usage.
*/
#include "refcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Weak: resolved to NULL when that part's file is not linked in.
extern int vdgx_refcheck_wan21_t5 (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_wan21_dit (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_wan21_sampling (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_wan21_vae (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_t5v11 (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_gemma3 (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_ltx2_text (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_ltx23_text (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_ltx2_video_vae (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_ltx23_video_vae (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_ltx2_dit (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_ltx23_dit (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_ltx2_audio (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_ltx23_audio (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_ltx2_sampling (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_ltx23_sampling (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_magi1_dit (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_magi1_sampling (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_magi1_sampling_distill (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_magi1_vae (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_wan21_i2v_clip (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_wan21_i2v_vae_encode (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_wan21_i2v_dit (vdgx_refcheck_t *rc) __attribute__ ((weak));
extern int vdgx_refcheck_wan21_i2v_pipeline (vdgx_refcheck_t *rc) __attribute__ ((weak));

typedef struct {
    const char *model;
    const char *part;
    int (*fn) (vdgx_refcheck_t *rc);
} s_part_t;

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: vdgx-refcheck MODEL DIR [--part PART|all] [--device cpu|cuda[:N]]\n"
        "                     [-v] [--atol X] [--rtol X] [--relnorm X]\n"
        "  MODEL PART: wan21 t5|dit|vae|sampling; t5v11 encoder; gemma3 decoder; ltx2 text|dit;\n"
        "              ltx23 text|dit; wan21-i2v clip|vae_encode|dit|pipeline;\n"
        "              ltx2|ltx23 video_vae|sampling;\n"
        "              magi1 dit|sampling|sampling_distill|vae\n"
        "              ltx2 audio; ltx23 audio\n"
        "  Compares the engines with the reference vectors in DIR (manifest.json + safetensors).\n"
        "  CPU: every element within atol + rtol*|want| (default 1e-4, 1e-4);\n"
        "  GPU: ||got - want|| / ||want|| < relnorm (default 1e-2).\n");
}

static int
s_parse_double (const char *s, double *v)
{
    char *end = NULL;
    *v = strtod (s, &end);
    return (end == s || *end || !(*v >= 0))? -1: 0;
}

int
main (int argc, char *argv [])
{
    const s_part_t parts [] = {
        { "wan21", "t5", vdgx_refcheck_wan21_t5 },
        { "wan21", "dit", vdgx_refcheck_wan21_dit },
        { "wan21", "sampling", vdgx_refcheck_wan21_sampling },
        { "wan21", "vae", vdgx_refcheck_wan21_vae },
        { "t5v11", "encoder", vdgx_refcheck_t5v11 },
        { "gemma3", "decoder", vdgx_refcheck_gemma3 },
        { "ltx2", "text", vdgx_refcheck_ltx2_text },
        { "ltx23", "text", vdgx_refcheck_ltx23_text },
        { "ltx2", "video_vae", vdgx_refcheck_ltx2_video_vae },
        { "ltx23", "video_vae", vdgx_refcheck_ltx23_video_vae },
        { "ltx2", "dit", vdgx_refcheck_ltx2_dit },
        { "ltx23", "dit", vdgx_refcheck_ltx23_dit },
        { "ltx2", "audio", vdgx_refcheck_ltx2_audio },
        { "ltx23", "audio", vdgx_refcheck_ltx23_audio },
        { "ltx2", "sampling", vdgx_refcheck_ltx2_sampling },
        { "ltx23", "sampling", vdgx_refcheck_ltx23_sampling },
        { "magi1", "dit", vdgx_refcheck_magi1_dit },
        { "magi1", "sampling", vdgx_refcheck_magi1_sampling },
        { "magi1", "sampling_distill", vdgx_refcheck_magi1_sampling_distill },
        { "magi1", "vae", vdgx_refcheck_magi1_vae },
        { "wan21-i2v", "clip", vdgx_refcheck_wan21_i2v_clip },
        { "wan21-i2v", "vae_encode", vdgx_refcheck_wan21_i2v_vae_encode },
        { "wan21-i2v", "dit", vdgx_refcheck_wan21_i2v_dit },
        { "wan21-i2v", "pipeline", vdgx_refcheck_wan21_i2v_pipeline },
    };
    const size_t nparts = sizeof (parts) / sizeof (parts [0]);

    vdgx_refcheck_t rc;
    memset (&rc, 0, sizeof (rc));
    rc.atol = 1e-4;
    rc.rtol = 1e-4;
    rc.relnorm = 1e-2;
    const char *model = NULL, *part = "all", *device = "cpu";
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i];
        const char *val = (i + 1 < argc)? argv [i + 1]: NULL;
        double d;
        if (strcmp (a, "-v") == 0 || strcmp (a, "--verbose") == 0)
            rc.verbose = true;
        else
        if (strcmp (a, "-h") == 0 || strcmp (a, "--help") == 0) {
            s_usage ();
            return 0;
        }
        else
        if (strcmp (a, "--part") == 0 && val) {
            part = val;
            i++;
        }
        else
        if (strcmp (a, "--device") == 0 && val) {
            device = val;
            i++;
        }
        else
        if ((strcmp (a, "--atol") == 0 || strcmp (a, "--rtol") == 0
          || strcmp (a, "--relnorm") == 0) && val) {
            if (s_parse_double (val, &d)) {
                fprintf (stderr, "vdgx-refcheck: bad value for %s: '%s'\n", a, val);
                return 2;
            }
            *(strcmp (a, "--atol") == 0? &rc.atol: strcmp (a, "--rtol") == 0? &rc.rtol: &rc.relnorm) = d;
            i++;
        }
        else
        if (a [0] == '-') {
            fprintf (stderr, "vdgx-refcheck: unknown or incomplete option '%s'\n", a);
            s_usage ();
            return 2;
        }
        else
        if (!model)
            model = a;
        else
        if (!rc.dir)
            rc.dir = a;
        else {
            fprintf (stderr, "vdgx-refcheck: unexpected argument '%s'\n", a);
            s_usage ();
            return 2;
        }
    }
    if (!model || !rc.dir) {
        s_usage ();
        return 2;
    }
    bool known_model = false, known_part = strcmp (part, "all") == 0;
    for (size_t i = 0; i < nparts; i++) {
        if (strcmp (parts [i].model, model) == 0) {
            known_model = true;
            if (strcmp (parts [i].part, part) == 0)
                known_part = true;
        }
    }
    if (!known_model || !known_part) {
        fprintf (stderr, "vdgx-refcheck: unknown %s '%s'\n", known_model? "part": "model",
                 known_model? part: model);
        s_usage ();
        return 2;
    }

    char path [4096];
    snprintf (path, sizeof (path), "%s/manifest.json", rc.dir);
    json_error_t jerr;
    rc.manifest = json_load_file (path, 0, &jerr);
    if (!rc.manifest || !json_is_object (rc.manifest)) {
        fprintf (stderr, "vdgx-refcheck: cannot read %s: %s (line %d)\n", path,
                 rc.manifest? "not a JSON object": jerr.text, jerr.line);
        json_decref (rc.manifest);
        return 1;
    }

    //  GPU backends run in their reduced-precision activation dtype and are judged by
    //  relative norm; the CPU runs f32 and must match elementwise.
    rc.gpu = strncmp (device, "cpu", 3) != 0;
    char *err = NULL;
    rc.backend = vdgx_backend_new (device, rc.gpu? VDGX_DTYPE_BF16: VDGX_DTYPE_F32, &err);
    if (!rc.backend) {
        fprintf (stderr, "vdgx-refcheck: cannot open device '%s': %s\n", device,
                 err? err: "unknown error");
        free (err);
        json_decref (rc.manifest);
        return 1;
    }
    printf ("vdgx-refcheck %s %s on %s (%s)\n", model, rc.dir, vdgx_backend_name (rc.backend),
            rc.gpu? "relative-norm tolerance": "elementwise tolerance");

    int not_run = 0;
    for (size_t i = 0; i < nparts; i++) {
        if (strcmp (parts [i].model, model) || (strcmp (part, "all") && strcmp (part, parts [i].part)))
            continue;
        printf ("part %s:\n", parts [i].part);
        fflush (stdout);
        if (!parts [i].fn) {
            printf ("part %s: not built (its refcheck_%s_%s.c is not in this build)\n",
                    parts [i].part, model, parts [i].part);
            not_run++;
        }
        else
        if (parts [i].fn (&rc) != 0) {
            printf ("part %s: could not run (see the messages above)\n", parts [i].part);
            not_run++;
        }
    }
    printf ("%d check(s), %d failure(s), %d part(s) not run: %s\n", rc.checks, rc.failures,
            not_run, (rc.failures || not_run)? "FAIL": "PASS");

    vdgx_refcheck_close (&rc);
    vdgx_backend_destroy (&rc.backend);
    json_decref (rc.manifest);
    return (rc.failures || not_run)? 1: 0;
}
