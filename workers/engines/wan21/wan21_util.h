/*  wan21_util.h - small helpers the Wan 2.1 engine files share (paths, formatted strings). */
#ifndef WAN21_UTIL_H_INCLUDED
#define WAN21_UTIL_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

//  printf into a newly allocated string (caller frees); NULL when out of memory.
char *wan21_strdupf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
//  Replaces *err (freed) with the formatted message; nothing when err is NULL.
void wan21_set_error (char **err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
//  The next value of a SplitMix64 stream (random test weights: fast, seedable, no zero state).
uint64_t wan21_splitmix64 (uint64_t *state);
//  True when path names a regular file / a directory.
bool wan21_is_file (const char *path);
bool wan21_is_dir (const char *path);

#endif
