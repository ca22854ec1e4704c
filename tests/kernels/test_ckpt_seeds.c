/*  test_ckpt_seeds.c - the fuzz seed checkpoints (written by make_ckpt_seeds.py with Python's
    own json and zipfile modules) open and read back the values they were written with: an
    interoperability check of our parsers against independent writers. */
#include "vdgx_ckpt.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static vdgx_ckpt_t *
s_open (const char *src, const char *rel)
{
    char path [1024];
    snprintf (path, sizeof (path), "%s/tests/fuzz/corpus/%s", src, rel);
    char *err = NULL;
    vdgx_ckpt_t *c = vdgx_ckpt_open (path, &err);
    if (!c)
        fprintf (stderr, "%s: %s\n", rel, err);
    assert (c);
    return c;
}

int
main (void)
{
    const char *src = getenv ("VDGX_SOURCE_DIR");
    assert (src);
    float f [8];
    vdgx_ckpt_t *c = s_open (src, "ckpt_safetensors/two_tensors");
    assert (vdgx_ckpt_count (c) == 2);
    assert (vdgx_ckpt_read_f32 (vdgx_ckpt_find (c, "w"), f, NULL) == 0 && f [1] == -2.0f && f [4] == 448.0f);
    assert (vdgx_ckpt_read_f32 (vdgx_ckpt_find (c, "b"), f, NULL) == 0 && f [0] == 1.0f && f [1] == -2.0f);
    vdgx_ckpt_destroy (&c);
    c = s_open (src, "ckpt_safetensors/scalar_and_empty");
    assert (vdgx_ckpt_find (c, "s")->ndim == 0 && vdgx_ckpt_find (c, "z")->nbytes == 0);
    assert (vdgx_ckpt_read_f32 (vdgx_ckpt_find (c, "i"), f, NULL) == 0 && f [0] == -7.0f);
    vdgx_ckpt_destroy (&c);
    c = s_open (src, "ckpt_pth/state_dict");
    assert (vdgx_ckpt_count (c) == 3);
    assert (vdgx_ckpt_read_f32 (vdgx_ckpt_find (c, "view"), f, NULL) == 0 && f [0] == 0.25f && f [1] == 448.0f);
    assert (vdgx_ckpt_read_f32 (vdgx_ckpt_find (c, "b"), f, NULL) == 0 && f [1] == -2.0f);
    vdgx_ckpt_destroy (&c);
    c = s_open (src, "ckpt_pth/half_scalar");
    assert (vdgx_ckpt_read_f32 (vdgx_ckpt_find (c, "h"), f, NULL) == 0 && f [0] == 1.0f);
    vdgx_ckpt_destroy (&c);
    printf ("checkpoint seeds: OK\n");
    return 0;
}
