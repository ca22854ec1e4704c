/*  fuzz_jobreply.c - libFuzzer target for job-service replies. The first input byte picks
    the command the reply answers (the decoder must be told); the rest is the reply map.
*/
#include <stdio.h>
#include "fuzz_codec.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char name [32];
    snprintf (name, sizeof name, "jobreply.%s", vdgx_jobcmd_name ((vdgx_jobcmd_type_t) (data [0] % VDGX_JOBCMD_COUNT)));
    fuzz_codec_check (name, data + 1, size - 1);
    return 0;
}
