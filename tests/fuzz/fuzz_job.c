/*  fuzz_job.c - libFuzzer target for the job decoder (see fuzz_codec.h). */
#include "fuzz_codec.h"

FUZZ_CODEC ("job")
