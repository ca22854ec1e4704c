/*  vdgx_sha256.h - streaming SHA-256 (FIPS 180-4), our own implementation.

    The context is a plain struct so it can live on the stack or inside another struct;
    vdgx_sha256_new/destroy exist for CLASS-style heap use.
        vdgx_sha256_t ctx;
        vdgx_sha256_init (&ctx);
        vdgx_sha256_update (&ctx, data, size);      //  any number of times
        char hex [VDGX_SHA256_HEX_SIZE];
        vdgx_sha256_final_hex (&ctx, hex);
*/
#ifndef VDGX_SHA256_H_INCLUDED
#define VDGX_SHA256_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VDGX_SHA256_SIZE      32
#define VDGX_SHA256_HEX_SIZE  65        //  64 lowercase hex digits + NUL

typedef struct {
    uint32_t state [8];
    uint64_t length;                    //  bytes hashed so far
    uint8_t block [64];
    size_t fill;                        //  bytes waiting in block
} vdgx_sha256_t;

//  Tests: true makes the plain C compression run even where the CPU has SHA extensions.
extern bool vdgx_sha256_portable;

vdgx_sha256_t *vdgx_sha256_new (void);
void vdgx_sha256_destroy (vdgx_sha256_t **self_p);

void vdgx_sha256_init (vdgx_sha256_t *self);
void vdgx_sha256_update (vdgx_sha256_t *self, const void *data, size_t size);
//  Writes the digest; the context must be re-initialised before reuse.
void vdgx_sha256_final (vdgx_sha256_t *self, uint8_t digest [VDGX_SHA256_SIZE]);
void vdgx_sha256_final_hex (vdgx_sha256_t *self, char hex [VDGX_SHA256_HEX_SIZE]);

//  One-shot helpers.
void vdgx_sha256_digest (const void *data, size_t size, uint8_t digest [VDGX_SHA256_SIZE]);
void vdgx_sha256_hex (const void *data, size_t size, char hex [VDGX_SHA256_HEX_SIZE]);
void vdgx_sha256_to_hex (const uint8_t digest [VDGX_SHA256_SIZE], char hex [VDGX_SHA256_HEX_SIZE]);
//  HMAC-SHA256 (RFC 2104) of the parts (concatenated) under key; parts ends with a NULL
//  pointer, sizes gives each part's length. Used to sign webhook deliveries.
void vdgx_sha256_hmac (const void *key, size_t key_size, const void *const *parts,
                       const size_t *sizes, uint8_t mac [VDGX_SHA256_SIZE]);
//  Hashes a whole file. Returns 0, or -1 (errno set) when it cannot be read.
int vdgx_sha256_file (const char *path, char hex [VDGX_SHA256_HEX_SIZE]);
//  True when text is exactly 64 lowercase hex digits.
bool vdgx_sha256_is_hex (const char *text);

void vdgx_sha256_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
