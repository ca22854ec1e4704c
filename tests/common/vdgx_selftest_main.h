/*  vdgx_selftest_main.h - the body of a class-selftest runner:
    `<runner> [-v] [class...]` runs the named classes' selftests (all when none is named).
    A runner defines its table and calls vdgx_selftest_main from main().
*/
#ifndef VDGX_SELFTEST_MAIN_H_INCLUDED
#define VDGX_SELFTEST_MAIN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} vdgx_selftest_class_t;

static inline int
vdgx_selftest_main (int argc, char *argv [], const vdgx_selftest_class_t *classes, size_t count)
{
    bool verbose = false;
    int named = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "-v") == 0)
            verbose = true;
        else
            named++;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "-v") == 0)
            continue;
        size_t c = 0;
        while (c < count && strcmp (classes [c].name, argv [i]))
            c++;
        if (c == count) {
            fprintf (stderr, "unknown class '%s'\n", argv [i]);
            return 2;
        }
        classes [c].test (verbose);
    }
    if (!named)
        for (size_t c = 0; c < count; c++)
            classes [c].test (verbose);
    return 0;
}

#endif
