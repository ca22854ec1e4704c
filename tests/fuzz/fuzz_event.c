/*  fuzz_event.c - libFuzzer target for PUB events. Input: topic, a NUL byte, then the map
    (both frames of vdgx_event_decode_msg); without a NUL the map is tried against job.j1.
*/
#include "fuzz_codec.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr (data, 0, size);
    if (!nul) {
        fuzz_codec_check ("event.job", data, size);
        return 0;
    }
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, data, (size_t) (nul - data));
    zmsg_addmem (msg, nul + 1, size - (size_t) (nul - data) - 1);
    vdgx_event_t ev;
    vdgx_error_t err;
    memset (&err, 0, sizeof err);
    if (vdgx_event_decode_msg (&ev, msg, &err) == 0) {
        //  Accepted: it must re-encode to the same topic and decode again.
        zmsg_t *again = vdgx_event_msg (&ev);
        if (!again)
            abort ();
        vdgx_event_t ev2;
        if (vdgx_event_decode_msg (&ev2, again, &err) != 0)
            abort ();
        if (!zframe_eq (zmsg_first (again), zmsg_first (msg)))
            abort ();
        zmsg_destroy (&again);
    }
    else
    if (!err.code || !err.message [0])
        abort ();
    zmsg_destroy (&msg);
    return 0;
}
