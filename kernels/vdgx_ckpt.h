/*  vdgx_ckpt.h - read-only checkpoints: safetensors (single or sharded with *.index.json,
    mmapped), PyTorch .pth (torch.save zip + a restricted pickle reader that never executes
    anything) and numpy .npz (np.savez: stored .npy arrays, named without ".npy"). Every header and offset is validated; a malformed or hostile file yields NULL and
    a clear message, never a crash.
*/
#ifndef VDGX_CKPT_H_INCLUDED
#define VDGX_CKPT_H_INCLUDED

#include "vdgx_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _vdgx_ckpt_t vdgx_ckpt_t;

typedef struct {
    const char *name;
    vdgx_dtype_t dtype;
    int ndim;
    int64_t shape [VDGX_MAX_DIMS];
    const void *data;       //  points into the mapped file; valid until the checkpoint is destroyed;
                            //  not necessarily aligned (memcpy it or use vdgx_ckpt_read_f32)
    size_t nbytes;
} vdgx_ckpt_tensor_t;

//  Opens a .safetensors file, a *.safetensors.index.json (shards beside it), or a .pth or
//  .npz file (detected by content). On failure returns NULL and sets *err (caller frees).
vdgx_ckpt_t *vdgx_ckpt_open (const char *path, char **err);
//  Opens from memory (for fuzzing; the buffer must outlive the checkpoint).
vdgx_ckpt_t *vdgx_ckpt_open_buffer (const void *buf, size_t size, char **err);
void vdgx_ckpt_destroy (vdgx_ckpt_t **self_p);
size_t vdgx_ckpt_count (vdgx_ckpt_t *self);
const vdgx_ckpt_tensor_t *vdgx_ckpt_at (vdgx_ckpt_t *self, size_t index);
//  Lookup by exact name; NULL when absent.
const vdgx_ckpt_tensor_t *vdgx_ckpt_find (vdgx_ckpt_t *self, const char *name);
//  A string of the safetensors __metadata__ (e.g. "config"), NULL when absent. With shards,
//  the first shard that has the key gives the value.
const char *vdgx_ckpt_metadata (vdgx_ckpt_t *self, const char *key);
//  Converts a tensor to f32 into dst (numel elements); -1 with *err on a dtype it cannot convert.
int vdgx_ckpt_read_f32 (const vdgx_ckpt_tensor_t *t, float *dst, char **err);
//  True when the tensors point into files this checkpoint mapped itself (vdgx_ckpt_open),
//  false for vdgx_ckpt_open_buffer: a mapped tensor may be kept for the checkpoint's life
//  and its pages given back to the file with vdgx_ckpt_release_pages.
bool vdgx_ckpt_mapped (vdgx_ckpt_t *self);
//  Drops every page of this checkpoint's file mappings from the process (madvise
//  MADV_DONTNEED on read-only private file maps: the data stays valid and is read from the
//  file again on its next touch). A loader calls it after converting tensors, so the pages
//  read do not stay resident next to the converted copies. No-op for a buffer checkpoint.
void vdgx_ckpt_release_pages (vdgx_ckpt_t *self);

//  Writes a safetensors file (tests and the tiny-checkpoint generator). Tensors are written in
//  the order given. Writes to a temporary file and renames.
int vdgx_safetensors_write (const char *path, const vdgx_ckpt_tensor_t *tensors, size_t count, char **err);
//  Same with a __metadata__ object: meta is NULL or "key", "value", ..., NULL (strings).
int vdgx_safetensors_write_meta (const char *path, const vdgx_ckpt_tensor_t *tensors, size_t count,
                                 const char *const *meta, char **err);

void vdgx_ckpt_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
