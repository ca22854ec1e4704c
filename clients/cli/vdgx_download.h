/*  vdgx_download.h - model download from a Hugging Face compatible hub.

    Each known model names a repository and the paths it needs (exact files, or folders whose
    every file is taken). The hub's tree API (`/api/models/REPO/tree/REV?recursive=true`) turns
    that into files with sizes and, for LFS files, sha256 digests; each file is then fetched
    from `/REPO/resolve/REV/PATH` into `PATH.part`, resuming with an HTTP Range request when a
    partial file is there, verified (sha256 when the hub gives one, size always) and renamed to
    its final name. A file already present with the right size and digest is skipped.
    The hub address is --endpoint, else $HF_ENDPOINT, else https://huggingface.co; a token is
    --token, else $HF_TOKEN (sent as a Bearer token, never printed).
*/
#ifndef VDGX_DOWNLOAD_H_INCLUDED
#define VDGX_DOWNLOAD_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *name;           //  name users type: wan21-1.3b, wan21-14b, ...-diffusers
    const char *repo;           //  hub repository
    const char *description;
    const char *const *paths;   //  files, or folders ending in '/', NULL-terminated
} vdgx_model_source_t;

//  The known models, NULL-terminated.
const vdgx_model_source_t *const *vdgx_model_sources (void);
const vdgx_model_source_t *vdgx_model_source_find (const char *name);

typedef struct _vdgx_download_t vdgx_download_t;

//  endpoint/token may be NULL (environment, then defaults). dest_dir is created when missing.
vdgx_download_t *vdgx_download_new (const char *endpoint, const char *token, const char *dest_dir);
void vdgx_download_destroy (vdgx_download_t **self_p);
//  Progress bar on stderr: auto (when stderr is a TTY), or forced off.
void vdgx_download_set_progress (vdgx_download_t *self, bool show);
//  Downloads every file of a model into dest_dir (keeping the hub's relative paths).
//  Returns 0, or -1 with a clear message in vdgx_download_error().
int vdgx_download_model (vdgx_download_t *self, const vdgx_model_source_t *model, const char *revision);
const char *vdgx_download_error (vdgx_download_t *self);
//  Bytes fetched over the network by the last call (resume tests use it).
uint64_t vdgx_download_bytes_fetched (vdgx_download_t *self);

//  `vdgx models download NAME [--dir DIR] [--endpoint URL] [--token T] [--revision R]
//  [--no-progress]` and `vdgx models sources`. argv[0] is "download" or "sources".
int vdgx_models_download_main (int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
