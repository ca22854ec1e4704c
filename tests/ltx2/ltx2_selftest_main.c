/*  ltx2_selftest_main.c - runs the selftests of the LTX-2 text-conditioning classes:
    `vdgx-ltx2-selftest [-v] [class...]` (all when none is named).
*/
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ltx2_prompt.h"
#include "ltx2_text.h"

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} s_class_t;

static const s_class_t s_classes [] = {
    { "ltx2_text", ltx2_text_test },
    { "ltx2_prompt", ltx2_prompt_test },
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
