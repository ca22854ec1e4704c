/*  fuzz_pth.c - libFuzzer target: torch.save zip archives and their restricted pickle. */
#include "fuzz_ckpt.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    return fuzz_ckpt_one (data, size);
}
