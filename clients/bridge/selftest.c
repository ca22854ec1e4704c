/*  vdgx-bridge-selftest CLASS [-v]: runs one class selftest (or all without CLASS). */
#include "vdgx_apikeys.h"
#include "vdgx_apireq.h"
#include "vdgx_bridge.h"
#include "vdgx_gate.h"
#include "vdgx_guard.h"
#include "vdgx_form.h"
#include "vdgx_front.h"
#include "vdgx_httpframe.h"
#include "vdgx_promtext.h"
#include "vdgx_thumb.h"
#include "vdgx_ui.h"
#include "vdgx_webhook.h"
#include <stdio.h>
#include <string.h>

int
main (int argc, char **argv)
{
    const char *only = argc > 1 && argv [1][0] != '-'? argv [1]: NULL;
    bool verbose = argc > 1 && strcmp (argv [argc - 1], "-v") == 0;
    static const struct { const char *name; void (*test) (bool); } tests [] = {
        { "apikeys", vdgx_apikeys_test }, { "guard", vdgx_guard_test }, { "gate", vdgx_gate_test }, { "form", vdgx_form_test },
        { "httpframe", vdgx_httpframe_test }, { "front", vdgx_front_test },
        { "apireq", vdgx_apireq_test }, { "promtext", vdgx_promtext_test }, { "thumb", vdgx_thumb_test },
        { "ui", vdgx_ui_test }, { "webhook", vdgx_webhook_test },
        { "bridge", vdgx_bridge_test },
    };
    int ran = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests [0]; i++)
        if (!only || strcmp (only, tests [i].name) == 0) {
            tests [i].test (verbose);
            ran++;
        }
    if (!ran) {
        fprintf (stderr, "vdgx-bridge-selftest: no class '%s'\n", only);
        return 2;
    }
    return 0;
}
