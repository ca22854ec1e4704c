/*  vdgx_util.c - small helpers of the model toolkit and the engines (see vdgx_util.h). */
#include "vdgx_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *
s_vformat (const char *fmt, va_list args)
{
    char *text = NULL;
    return vasprintf (&text, fmt, args) < 0? NULL: text;
}

char *
vdgx_strdupf (const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *text = s_vformat (fmt, args);
    va_end (args);
    return text;
}

void
vdgx_set_error (char **err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list args;
    va_start (args, fmt);
    char *text = s_vformat (fmt, args);
    va_end (args);
    free (*err);
    *err = text;
}

uint64_t
vdgx_splitmix64 (uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

bool
vdgx_is_file (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 && S_ISREG (st.st_mode);
}

bool
vdgx_is_dir (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

uint64_t
vdgx_random_seed (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 20) ^ ((uint64_t) getpid () << 40);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (z ^ (z >> 31)) & 0x7fffffffffffffffull;
}
