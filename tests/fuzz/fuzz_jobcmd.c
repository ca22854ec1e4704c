/*  fuzz_jobcmd.c - libFuzzer target for the jobcmd decoder (see fuzz_codec.h). */
#include "fuzz_codec.h"

FUZZ_CODEC ("jobcmd")
