/*  fuzz_safetensors.c - libFuzzer target: safetensors images (header JSON, offsets). */
#include "fuzz_ckpt.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  Steer the input away from the .pth path: a zip signature is fuzz_pth's job.
    if (size >= 4 && memcmp (data, "PK\x03\x04", 4) == 0)
        return 0;
    return fuzz_ckpt_one (data, size);
}
