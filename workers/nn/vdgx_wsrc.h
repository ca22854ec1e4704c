/*  vdgx_wsrc.h - weight sources for the model toolkit: a checkpoint seen through a layout
    map (data: a name prefix and a table of name patterns), or a seeded random generator.

    Engines name every tensor by its canonical (official) name; the map turns it into the
    name a given layout uses. A rename { "blocks.*.self_attn.q.", "blocks.*.attn1.to_q." }
    applies to names that start with `from`, where '*' matches a decimal number that is
    carried into `to`; the first matching rename wins; then the prefix is prepended.

    Reads check shape (leading 1s tolerated), convert any float dtype to f32, apply a
    scaled-FP8 companion ("<layer>.scale_weight" or "<layer>.weight_scale") and refuse
    non-finite values. Random sources give norm weights 1, biases 0 and uniform values of
    std 0.02 elsewhere (benchmarks and memory tests; timing ignores the values).
*/
#ifndef VDGX_WSRC_H_INCLUDED
#define VDGX_WSRC_H_INCLUDED

#include "vdgx_nn.h"
#include "vdgx_ckpt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *from, *to;
} vdgx_wsrc_rename_t;

typedef struct {
    const char *name;                   //  "official", "diffusers", "comfy", ...
    const char *prefix;                 //  prepended to every name, or NULL
    const vdgx_wsrc_rename_t *renames;  //  or NULL
    size_t count;
} vdgx_wsrc_map_t;

typedef struct _vdgx_wsrc_t vdgx_wsrc_t;

//  A checkpoint (borrowed: it must outlive the source) through a map (NULL = names as they
//  are). `who` prefixes error messages ("wan21 dit").
vdgx_wsrc_t *vdgx_wsrc_new (vdgx_ckpt_t *ckpt, const vdgx_wsrc_map_t *map, const char *who);
vdgx_wsrc_t *vdgx_wsrc_new_random (uint64_t seed, const char *who);
void vdgx_wsrc_destroy (vdgx_wsrc_t **self_p);

//  The checkpoint name of a canonical name; the tensor itself (NULL when absent or random).
void vdgx_wsrc_name (vdgx_wsrc_t *self, const char *canonical, char *out, size_t size);
const vdgx_ckpt_tensor_t *vdgx_wsrc_find (vdgx_wsrc_t *self, const char *canonical);
//  Checkpoint tensors read so far (FP8 scale companions not counted).
size_t vdgx_wsrc_used (vdgx_wsrc_t *self);

//  Tensor `name` of this shape as host f32 (caller frees); NULL with *err.
float *vdgx_wsrc_fetch (vdgx_wsrc_t *self, const char *name, int ndim, const int64_t *shape,
                        char **err);
//  The same onto the backend as a new tensor of dtype.
int vdgx_wsrc_tensor (vdgx_wsrc_t *self, vdgx_backend_t *b, const char *name, vdgx_dtype_t dtype,
                      int ndim, const int64_t *shape, vdgx_tensor_t *t, char **err);
//  A linear layer "<layer>.weight" [n,k] in fmt (an FP8 checkpoint tensor is kept as-is when
//  fmt is FP8) and, when bias_dtype >= 0, "<layer>.bias" [n] in that dtype.
int vdgx_wsrc_linear (vdgx_wsrc_t *self, vdgx_backend_t *b, const char *layer, int64_t n,
                      int64_t k, vdgx_wfmt_t fmt, int bias_dtype, vdgx_linear_t *l, char **err);
//  A norm: "<prefix>.weight" when affine, "<prefix>.bias" when bias (both [dim]).
int vdgx_wsrc_norm (vdgx_wsrc_t *self, vdgx_backend_t *b, vdgx_norm_t *n, vdgx_norm_kind_t kind,
                    const char *prefix, int64_t dim, float eps, bool affine, bool bias,
                    bool one_plus, char **err);

void vdgx_wsrc_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
