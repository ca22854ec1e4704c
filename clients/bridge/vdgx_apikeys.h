/*  vdgx_apikeys.h - API keys for the REST bridge.

    A keys file holds one key per line: the sha256 of the secret as 64 hex digits, then
    optionally whitespace and a name (used as the rate-limit identity, the owner of the key's
    jobs and in logs) and `role=admin` or `role=user` (the default): users see only their own
    jobs, admins everything and the operators' routes (docs/SECURITY.md). Blank lines
    and lines starting with '#' are ignored. Only hashes are stored, so a leaked keys file does
    not leak the secrets. `vdgx-bridge --hash-key SECRET` prints a line for the file.

    Lookups hash the presented token and compare it against every stored hash in constant
    time (no early exit), so timing does not reveal how much of a hash matched.
*/
#ifndef VDGX_APIKEYS_H_INCLUDED
#define VDGX_APIKEYS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VDGX_APIKEY_NAME_MAX 64

typedef struct _vdgx_apikeys_t vdgx_apikeys_t;

vdgx_apikeys_t *vdgx_apikeys_new (void);
void vdgx_apikeys_destroy (vdgx_apikeys_t **self_p);
//  Loads a keys file (adds to the keys held). Returns 0, or -1 with vdgx_apikeys_error set
//  ("keys.txt:3: not a sha256 hex digest").
int vdgx_apikeys_load (vdgx_apikeys_t *self, const char *path);
//  Adds one key given its hash line ("<hex> [name]"); name "" becomes "key<N>".
int vdgx_apikeys_add_line (vdgx_apikeys_t *self, const char *line, const char *origin, int lineno);
size_t vdgx_apikeys_count (vdgx_apikeys_t *self);
const char *vdgx_apikeys_error (vdgx_apikeys_t *self);
//  Checks a token; on a match returns true, copies the key's name into name (may be NULL)
//  and its role into *admin (may be NULL).
bool vdgx_apikeys_check (vdgx_apikeys_t *self, const char *token, size_t token_len,
                         char *name, size_t name_size, bool *admin);
//  The keys-file line for a secret: "<sha256 hex>" plus " name" when name is not NULL/"".
//  Caller frees.
char *vdgx_apikeys_hash_line (const char *secret, const char *name);
//  Constant-time comparison of two equal-length buffers.
bool vdgx_apikeys_equal (const void *a, const void *b, size_t size);

void vdgx_apikeys_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
