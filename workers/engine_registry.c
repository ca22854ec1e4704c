/*  engine_registry.c - the process-wide table of engine classes, looked up by model name.

    Registration happens once at start-up (main thread, before any actor starts), so the table
    needs no lock.
*/
#include <stdio.h>
#include <string.h>
#include "engine.h"
#ifdef VDGX_HAVE_WAN21
#include "wan21_engine.h"
#endif
#ifdef VDGX_HAVE_LTX2
#include "ltx2_engine.h"
#endif
#ifdef VDGX_HAVE_MAGI1
#include "magi1_engine.h"
#endif

#define S_MAX_ENGINES 32

static const vdgx_engine_class_t *s_engines [S_MAX_ENGINES];
static int s_count = 0;

int
vdgx_engine_register (const vdgx_engine_class_t *cls)
{
    if (!cls || !cls->name || !*cls->name || !cls->create || !cls->load || !cls->generate
    ||  !cls->unload || !cls->destroy)
        return -1;
    for (int i = 0; i < s_count; i++)
        if (s_engines [i] == cls || strcmp (s_engines [i]->name, cls->name) == 0)
            return -1;
    if (s_count == S_MAX_ENGINES)
        return -1;
    s_engines [s_count++] = cls;
    return 0;
}

//  An exact name wins; otherwise the longest engine name N such that the model is "N-...",
//  so "wan21-tiny" can have its own engine while "wan21-1.3b" falls to "wan21".
const vdgx_engine_class_t *
vdgx_engine_find (const char *model)
{
    if (!model)
        return NULL;
    const vdgx_engine_class_t *best = NULL;
    size_t best_len = 0;
    for (int i = 0; i < s_count; i++) {
        const char *name = s_engines [i]->name;
        size_t len = strlen (name);
        if (strcmp (model, name) == 0)
            return s_engines [i];
        if (strncmp (model, name, len) == 0 && model [len] == '-' && len > best_len) {
            best = s_engines [i];
            best_len = len;
        }
    }
    return best;
}

//  Walks the registered classes (for --list-models); returns NULL past the end.
const vdgx_engine_class_t *
vdgx_engine_at (int index)
{
    return index >= 0 && index < s_count? s_engines [index]: NULL;
}

void
vdgx_engines_register_builtin (void)
{
    static int done = 0;
    if (done++)
        return;
    //  Product engines register here, one line each, e.g.
    //      vdgx_engine_register (&vdgx_wan21_engine_class);
    //      vdgx_engine_register (&vdgx_wan21_tiny_engine_class);
    //  (declare the class in the engine's header and link its library into vdgx_worker_rt
    //  in workers/CMakeLists.txt). Test engines never register here: see tests/engines/.
#ifdef VDGX_HAVE_WAN21
    vdgx_engine_register (&vdgx_wan21_engine_class);
    vdgx_engine_register (&vdgx_wan21_tiny_engine_class);
#endif
#ifdef VDGX_HAVE_LTX2
    vdgx_engine_register (&vdgx_ltx2_engine_class);
    vdgx_engine_register (&vdgx_ltx23_engine_class);
    vdgx_engine_register (&vdgx_ltx2_tiny_engine_class);
#endif
#ifdef VDGX_HAVE_MAGI1
    vdgx_engine_register (&vdgx_magi1_engine_class);
    vdgx_engine_register (&vdgx_magi1_tiny_engine_class);
#endif
}
