/*  wan21_engine.h - the Wan 2.1 text-to-video engine of the worker (engine.h), and the tiny
    random-weight demo checkpoint.

    Service names: "wan21-1.3b", "wan21-14b", "wan21" (the size is told by the DiT shapes:
    dim 1536 is the 1.3B, dim 5120 the 14B) and "wan21-tiny" (any other DiT width, e.g. the
    checkpoint written by wan21_tiny_write).

    Weights folder, official layout:
        diffusion_pytorch_model.safetensors (or sharded, with .index.json), config.json,
        Wan2.1_VAE.pth, models_t5_umt5-xxl-enc-bf16.pth, google/umt5-xxl/spiece.model
    (the .pth files may also be .safetensors with the same keys), or the diffusers layout:
        transformer/, vae/, text_encoder/, tokenizer/.

    A job: tokenize + umT5 (prompt and negative prompt) on the worker's backend, the
    denoising loop with classifier-free guidance, the VAE decoding one latent frame at a time
    with each video frame handed to the sink as soon as it exists. Progress: loading,
    encoding_text, denoising k/N, decoding k/N. Cancellation at every step boundary.
*/
#ifndef WAN21_ENGINE_H_INCLUDED
#define WAN21_ENGINE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "engine.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const vdgx_engine_class_t vdgx_wan21_engine_class;
extern const vdgx_engine_class_t vdgx_wan21_tiny_engine_class;

//  Writes the tiny demo checkpoint into dir (created if needed) in the official layout:
//  random weights at a tiny width (DiT dim 64, 2 layers; umT5 dim 32; VAE base width 8),
//  a SentencePiece model trained on a small embedded text, config.json and README.txt.
//  Returns 0, or -1 with *err (caller frees).
int wan21_tiny_write (const char *dir, uint64_t seed, char **err);
//  Trains the tiny tokenizer into path (spiece.model); vocab_size pieces at most.
int wan21_tiny_train_spm (const char *path, int vocab_size, char **err);
//  vdgx-worker --make-tiny-checkpoint DIR: prints what it wrote; exit status.
int wan21_tiny_main (const char *dir);

//  The frame count a request of `seconds` at `fps` maps to: 4*round(seconds*fps/4)+1,
//  clamped to [1, max_frames].
uint32_t wan21_engine_frames_for (double seconds, uint32_t fps, uint32_t max_frames);

void wan21_engine_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
