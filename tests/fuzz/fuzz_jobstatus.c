/*  fuzz_jobstatus.c - libFuzzer target for the jobstatus decoder (see fuzz_codec.h). */
#include "fuzz_codec.h"

FUZZ_CODEC ("jobstatus")
