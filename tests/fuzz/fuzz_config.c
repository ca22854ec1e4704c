/*  fuzz_config.c - libFuzzer target for the configuration parser (vdgx_config_load_string).
    Input is the file text; a rejected file must leave an error message naming the file, and
    the settings untouched.
*/
#include <stdlib.h>
#include <string.h>
#include "vdgx_config.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *text = malloc (size + 1);
    if (!text)
        return 0;
    memcpy (text, data, size);
    text [size] = 0;
    vdgx_config_t *config = vdgx_config_new ();
    if (vdgx_config_load_string (config, text, "fuzz.ini") != 0) {
        if (strncmp (vdgx_config_error (config), "fuzz.ini", 8) != 0
        ||  vdgx_config_heartbeat_ms (config) != 2500)
            abort ();
    }
    else {
        //  Accepted: the typed accessors hold valid values and the models are consistent.
        if (vdgx_config_heartbeat_ms (config) < 100 || vdgx_config_liveness (config) < 1)
            abort ();
        for (size_t i = 0; i < vdgx_config_model_count (config); i++) {
            const vdgx_model_conf_t *m = vdgx_config_model (config, i);
            if (!m || vdgx_config_model_find (config, m->name) == NULL || m->nprecisions == 0)
                abort ();
        }
    }
    vdgx_config_destroy (&config);
    free (text);
    return 0;
}
