/*  ltx2_engine.h - the LTX-2 / LTX-2.3 text-to-audio+video engine of the worker (engine.h),
    and the tiny random-weight demo model.

    Services (engine classes "ltx2", "ltx23", "ltx2-tiny"):
      ltx2-19b, ltx2-19b-distilled      LTX-2 (19B, first release): ltx-2-19b-dev[-fp8]
                                        .safetensors / ltx-2-19b-distilled[-fp8].safetensors
      ltx23-22b, ltx23-22b-distilled    LTX-2.3 (22B): ltx-2.3-22b-dev.safetensors /
                                        ltx-2.3-22b-distilled[-1.1].safetensors
      ltx2, ltx23                       whichever the folder holds (dev schedule)
      ltx2-tiny                         the random-weight demo (ltx2_tiny_write)
    19B and 22B are told apart by the checkpoint's __metadata__ config (the LTX-2.3 switches:
    caption projection before the connectors / model_version 2.3), never by the file name; a
    service refuses a checkpoint of the other release with both named.

    Weights folder: one single-file checkpoint (the LTX file, or ltx2-tiny.safetensors) that
    bundles the DiT (model.diffusion_model.*, with the text connectors), the text projection
    (text_embedding_projection.*), the video VAE (vae.*), the audio VAE (audio_vae.*) and the
    vocoder (vocoder.*); and Gemma 3 in a subfolder (gemma-3-12b-it-qat-q4_0-unquantized/ or
    gemma/: config.json, safetensors, tokenizer.model). --weights may also name the checkpoint
    file itself (Gemma then beside it). FP8 (-fp8 files) and NVFP4 checkpoint weights stay in
    their format when the precision asks for it (fp8, fp4), and are dequantized otherwise.

    A job: Gemma 3 + the LTX text path for the prompt and the negative prompt (cached), the
    joint video + audio denoising (ltx2_sample: dev schedule with per-modality CFG, or the
    distilled 8-step schedule without guidance), the video VAE decoding with each frame handed
    to the sink, then the vocoder's stereo PCM (24 kHz LTX-2, 48 kHz LTX-2.3) cut or padded to
    the video's duration (frames / fps) so the AAC track ends with the video. Progress:
    loading, encoding_text, denoising k/N, decoding k/N (frames), then "audio". Cancellation
    at every step boundary and between decoder blocks.
    Limits: width and height multiples of 32, frames 8n+1, 24 fps by default; defaults of the
    official pipelines: 768x512, 121 frames, 40 steps (LTX-2) / 30 (LTX-2.3) with video CFG
    3 and audio CFG 7; distilled 8 steps, no guidance. The request's guidance is the video
    scale; the audio scale stays 7 (1 when guidance is 1).
*/
#ifndef LTX2_ENGINE_H_INCLUDED
#define LTX2_ENGINE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "engine.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LTX2_TINY_FILE "ltx2-tiny.safetensors"

extern const vdgx_engine_class_t vdgx_ltx2_engine_class;
extern const vdgx_engine_class_t vdgx_ltx23_engine_class;
extern const vdgx_engine_class_t vdgx_ltx2_tiny_engine_class;

//  Writes the tiny demo model into dir (created if needed): ltx2-tiny.safetensors in the
//  LTX-2 single-file layout with its metadata config, and gemma/ (a random Gemma 3 of 4 layers
//  of 32 with a trained tokenizer). Returns 0, or -1 with *err (caller frees).
int ltx2_tiny_write (const char *dir, uint64_t seed, char **err);
//  vdgx-worker --make-tiny-checkpoint DIR --model ltx2-tiny: prints what it wrote; exit status.
int ltx2_tiny_main (const char *dir);

void ltx2_engine_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
