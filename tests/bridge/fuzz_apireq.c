/*  libFuzzer target: any bytes as an HTTP body through the bridge's request validation
    (JSON and form dialects), then as a broker mmi.metrics / mmi.workers reply through the
    Prometheus renderer. Nothing may crash, leak or accept an invalid request. */
#include "vdgx_apireq.h"
#include "vdgx_promtext.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *body = json_loadb ((const char *) data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (body) {
        for (int dialect = 0; dialect < 2; dialect++)
            for (int form = 0; form < 2; form++) {
                vdgx_genreq_t req;
                vdgx_genreq_init (&req);
                vdgx_apierr_t err;
                if (vdgx_apireq_parse (&req, body, (vdgx_apireq_dialect_t) dialect, form, "testgen", &err) == 0) {
                    vdgx_error_t perr;
                    assert (vdgx_genreq_validate (&req, &perr) == 0);     //  accepted = valid
                }
                else
                    assert (err.status >= 400 && err.status < 600 && err.message [0]);
                vdgx_genreq_clear (&req);
            }
        json_decref (body);
    }
    vdgx_promtext_t *p = vdgx_promtext_new ();
    vdgx_promtext_add_broker_metrics (p, data, size);
    vdgx_promtext_add_broker_workers (p, data, size);
    char *text = vdgx_promtext_render (p);
    //  Every sample line has a valid name start and no stray newline inside.
    for (char *line = text; line && *line; ) {
        char *nl = strchr (line, '\n');
        assert (nl);
        assert (*line == '#' || *line == '_' || *line == ':' || (*line >= 'a' && *line <= 'z') || (*line >= 'A' && *line <= 'Z'));
        line = nl + 1;
    }
    free (text);
    vdgx_promtext_destroy (&p);
    return 0;
}
