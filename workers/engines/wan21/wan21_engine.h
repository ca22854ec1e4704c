/*  wan21_engine.h - the Wan 2.1 engine of the worker (engine.h): text-to-video,
    image-to-video and first-last-frame-to-video, and the tiny random-weight demo checkpoints.

    Service names: "wan21-1.3b", "wan21-14b", "wan21" (the size is told by the DiT shapes:
    dim 1536 is the 1.3B, dim 5120 the 14B; the kind by the image branch) and "wan21-tiny"
    (any other DiT width, e.g. the checkpoint written by wan21_tiny_write); the image models
    "wan21-i2v-14b-480p", "wan21-i2v-14b-720p" (Wan2.1-I2V-14B-480P / -720P: one
    architecture; the 480p service takes the 480p sizes only), "wan21-flf2v-14b-720p"
    (Wan2.1-FLF2V-14B-720P), "wan21-i2v-tiny" and "wan21-flf2v-tiny". A service refuses
    weights of another size or kind when it is created (header only) or loaded.

    Weights folder, official layout:
        diffusion_pytorch_model.safetensors (or sharded, with .index.json), config.json,
        Wan2.1_VAE.pth, models_t5_umt5-xxl-enc-bf16.pth, google/umt5-xxl/spiece.model
    and for the image models models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth
    (the .pth files may also be .safetensors with the same keys), or the diffusers layout
    (text-to-video only): transformer/, vae/, text_encoder/, tokenizer/.

    A job: tokenize + umT5 (prompt and negative prompt) on the worker's backend; for the image
    models the request's image (and last_image) decoded with vdgx_image, the CLIP features
    and the y latent (wan21_i2v.h) at the size validate() chose from the image's aspect
    (width x height of the request is the pixel budget); the denoising loop with
    classifier-free guidance, the VAE decoding one latent frame at a time with each video
    frame handed to the sink as soon as it exists. Progress: loading, encoding_text (the
    image conditioning reports as encoding_text "image"), denoising k/N, decoding k/N.
    Cancellation at every step boundary. A request without the image an image model needs,
    or with one a text-to-video model cannot take, is a bad_request naming the field.
*/
#ifndef WAN21_ENGINE_H_INCLUDED
#define WAN21_ENGINE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "engine.h"
#include "vdgx_ckpt.h"

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
//  The same for a named tiny model: "wan21-tiny", "wan21-i2v-tiny" (the I2V-14B layout:
//  36-channel DiT with the image branch and text_len 512, the CLIP visual tower in
//  models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth, the VAE with its encoder) or
//  "wan21-flf2v-tiny" (the same with img_emb.emb_pos, the FLF2V-14B layout).
int wan21_tiny_write_model (const char *dir, const char *model, uint64_t seed, char **err);
//  Trains the tiny tokenizer into path (spiece.model); vocab_size pieces at most.
int wan21_tiny_train_spm (const char *path, int vocab_size, char **err);
//  Writes tensors as a torch.save (.pth / HF pytorch_model.bin) file, for tiny checkpoints.
int wan21_tiny_write_pth (const char *path, const vdgx_ckpt_tensor_t *tensors, size_t count,
                          char **err);
//  vdgx-worker --make-tiny-checkpoint DIR [--model NAME]: prints what it wrote; exit status.
//  model NULL = "wan21-tiny".
int wan21_tiny_main (const char *dir, const char *model);

//  The frame count a request of `seconds` at `fps` maps to: 4*round(seconds*fps/4)+1,
//  clamped to [1, max_frames].
uint32_t wan21_engine_frames_for (double seconds, uint32_t fps, uint32_t max_frames);

void wan21_engine_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
