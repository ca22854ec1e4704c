/*  fuzz_genreq.c - libFuzzer target for the genreq decoder (see fuzz_codec.h). */
#include "fuzz_codec.h"

FUZZ_CODEC ("genreq")
