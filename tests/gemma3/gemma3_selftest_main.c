/*  gemma3_selftest_main.c - runs the selftests of the Gemma 3 classes:
    `vdgx-gemma3-selftest [-v] [class...]` (all when none is named).
*/
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "gemma3.h"
#include "gemma3_tok.h"

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} s_class_t;

static const s_class_t s_classes [] = {
    { "gemma3_tok", gemma3_tok_test },
    { "gemma3", gemma3_test },
};
#define S_CLASS_COUNT (sizeof (s_classes) / sizeof (s_classes [0]))

int
main (int argc, char *argv [])
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
        while (c < S_CLASS_COUNT && strcmp (s_classes [c].name, argv [i]))
            c++;
        if (c == S_CLASS_COUNT) {
            fprintf (stderr, "unknown class '%s'\n", argv [i]);
            return 2;
        }
        s_classes [c].test (verbose);
    }
    if (!named)
        for (size_t c = 0; c < S_CLASS_COUNT; c++)
            s_classes [c].test (verbose);
    return 0;
}
