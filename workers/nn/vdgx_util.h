/*  vdgx_util.h - small helpers of the model toolkit and the engines (formatted strings and errors, paths, a SplitMix64 stream, request seeds). */
#ifndef VDGX_UTIL_H_INCLUDED
#define VDGX_UTIL_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

//  printf into a newly allocated string (caller frees); NULL when out of memory.
char *vdgx_strdupf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
//  Replaces *err (freed) with the formatted message; nothing when err is NULL.
void vdgx_set_error (char **err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
//  The next value of a SplitMix64 stream (random test weights: fast, seedable, no zero state).
uint64_t vdgx_splitmix64 (uint64_t *state);
//  A fresh 63-bit seed for a request that gives none (clock and process id, mixed).
uint64_t vdgx_random_seed (void);
//  True when path names a regular file / a directory.
bool vdgx_is_file (const char *path);
bool vdgx_is_dir (const char *path);

#endif
