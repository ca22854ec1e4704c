/*  magi1_engine.h - the MAGI-1 engine of the worker (Sand AI, Apache-2.0): autoregressive
    text-to-video chunk by chunk, each 24-frame chunk decoded and streamed as soon as it is
    clean (engine.h `streaming`).

    Services: magi1 (the DiT found in the folder), magi1-4.5b, magi1-4.5b-distill,
    magi1-4.5b-distill-quant, magi1-24b, magi1-24b-distill, magi1-24b-distill-quant; magi1-tiny
    (random weights, made by `vdgx-worker --make-tiny-checkpoint DIR --model magi1-tiny`).
    4.5B and 24B are told apart by the DiT's shapes (hidden 3072 / 6144), base and distill by
    the folder (inference_weight.distill) or the service name.

    Weights folder (--weights): the official layout of the sand-ai/MAGI-1 repository,
        ckpt/magi/<variant>/inference_weight[.fp8][.distill]/   the DiT (magi1_dit_open)
        ckpt/t5/t5-v1_1-xxl/                                     T5-v1.1-XXL (HF) + spiece.model
        ckpt/vae/                                                the ViT VAE (config.json + weights)
        special_tokens.npz                                       from the MAGI-1 code repository
                                                                 (example/assets/), or .safetensors
    (also without the ckpt/ prefix, and the DiT directly in the folder).

    Requests: the official sizes (720x720, 1280x720, 720x1280; tiny: multiples of 16 from 32
    to 64), 24 fps, frames in whole 24-frame chunks (seconds -> ceil(seconds) chunks), euler
    (flow) steps, a multiple of 4 and of the window size. Guidance replaces the text scale of
    the guided part of the schedule (base models; t < 0.3). No negative prompt: MAGI-1's
    unconditional side is its learned null caption.

    KV window: VDGX_MAGI1_WINDOW_SIZE (1..4, default 4, the official value) sets the chunks
    denoised together: fewer chunks in flight, less activation memory per step, more steps
    in all (chunks + window - 1 stages of steps/window steps), and results that differ from
    the official window of 4.
*/
#ifndef MAGI1_ENGINE_H_INCLUDED
#define MAGI1_ENGINE_H_INCLUDED

#include "engine.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const vdgx_engine_class_t vdgx_magi1_engine_class;
extern const vdgx_engine_class_t vdgx_magi1_tiny_engine_class;

//  The tiny random-weight checkpoint (official names and layout at a tiny width): writes the
//  folder dir. Returns 0, or -1 with *err.
int magi1_tiny_write (const char *dir, uint64_t seed, char **err);
//  vdgx-worker --make-tiny-checkpoint DIR --model magi1-tiny: prints what it wrote; exit status.
int magi1_tiny_main (const char *dir);

//  Chunks for a duration: ceil(seconds) at 24 fps (a chunk is one second), at least 1.
uint32_t magi1_engine_chunks_for (double seconds);

void magi1_engine_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
