/*  fuzz_mdp.c - libFuzzer target for Majordomo framing (vdgx_mdp_decode). The input is a
    list of frames, each a 2-byte little-endian length then its bytes (a short tail is one
    last frame). A decoded message must encode back and decode to the same fields.
*/
#include <czmq.h>
#include "vdgx_msg.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    zmsg_t *msg = zmsg_new ();
    size_t off = 0;
    while (off < size) {
        if (size - off < 2) {
            zmsg_addmem (msg, data + off, size - off);
            break;
        }
        size_t len = (size_t) data [off] | (size_t) data [off + 1] << 8;
        off += 2;
        if (len > size - off)
            len = size - off;
        zmsg_addmem (msg, data + off, len);
        off += len;
    }
    vdgx_mdp_t m;
    vdgx_error_t err;
    memset (&err, 0, sizeof err);
    if (vdgx_mdp_decode (&m, &msg, &err) != 0) {
        if (msg || !err.code || !err.message [0])
            abort ();
        return 0;
    }
    vdgx_mdp_t copy = m;
    copy.address = m.address? zframe_dup (m.address): NULL;
    copy.body = zmsg_dup (m.body);
    zmsg_t *again = vdgx_mdp_encode (&copy);
    if (!again)
        abort ();
    vdgx_mdp_t m2;
    if (vdgx_mdp_decode (&m2, &again, &err) != 0)
        abort ();
    if (m2.version != m.version || m2.worker != m.worker || m2.command != m.command
    ||  strcmp (m2.service, m.service) || (m.address && !zframe_eq (m.address, m2.address))
    ||  zmsg_size (m2.body) != zmsg_size (m.body))
        abort ();
    vdgx_mdp_clear (&m);
    vdgx_mdp_clear (&m2);
    return 0;
}
