/*  ltx2_prompt.h - prompt text to LTX-2 / LTX-2.3 contexts (class ltx2_prompt): Gemma's
    tokenizer (left padding to max_tokens, 1024 as LTX does), the Gemma 3 decoder (all hidden
    states) and the LTX text path (ltx2_text), with
    - a cache of the last N prompts' contexts (host memory; least recently used out first), so
      a repeated prompt or negative prompt never runs Gemma again;
    - Gemma loaded on a cache miss only, and freed after encoding when the policy says so:
      LTX2_GEMMA_FREE always, LTX2_GEMMA_KEEP never, LTX2_GEMMA_AUTO (default) when the host's
      memory is short, i.e. when its total is below Gemma's weights plus reserve_bytes (what
      the caller must keep for the DiT, VAEs and activations). A 128 GB host running the 22B
      DiT in bf16 frees Gemma; a 256 GB host keeps it.
    The engine calls ltx2_prompt_encode for the prompt and the negative prompt of a job.
*/
#ifndef LTX2_PROMPT_H_INCLUDED
#define LTX2_PROMPT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vdgx_backend.h"
#include "ltx2_text.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { LTX2_GEMMA_AUTO = 0, LTX2_GEMMA_KEEP, LTX2_GEMMA_FREE } ltx2_gemma_policy_t;

typedef struct {
    const char *gemma_path;         //  HF Gemma 3 directory (config.json, weights, tokenizer.model)
    const char *tokenizer_path;     //  tokenizer.model or its directory; NULL = gemma_path
    vdgx_wfmt_t gemma_wfmt;         //  Gemma's linear weights: BF16, FP8_E4M3 (F32 for tests)
    int max_tokens;                 //  0 = 1024
    int cache_entries;              //  prompts kept (0 = no cache)
    ltx2_gemma_policy_t policy;
    size_t reserve_bytes;           //  AUTO: host memory the caller needs besides Gemma
    size_t host_bytes;              //  AUTO: the host's memory; 0 = read /proc/meminfo
} ltx2_prompt_options_t;

typedef struct _ltx2_prompt_t ltx2_prompt_t;

//  text is borrowed (it must outlive the encoder). Loads the tokenizer now (errors name the
//  file) and checks that the Gemma weights exist; Gemma itself is loaded on the first miss.
ltx2_prompt_t *ltx2_prompt_new (ltx2_text_t *text, vdgx_backend_t *backend,
                                const ltx2_prompt_options_t *options, char **err);
void ltx2_prompt_destroy (ltx2_prompt_t **self_p);
const char *ltx2_prompt_error (ltx2_prompt_t *self);

//  Contexts of one prompt: video [T, video_dim] and audio [T, audio_dim] allocated on the
//  backend in its act dtype (caller releases). From the cache when the prompt is there.
int ltx2_prompt_encode (ltx2_prompt_t *self, const char *prompt, vdgx_tensor_t *video,
                        vdgx_tensor_t *audio);
//  Several prompts with at most one Gemma load (e.g. prompt and negative prompt).
int ltx2_prompt_encode_many (ltx2_prompt_t *self, const char *const *prompts, int count,
                             vdgx_tensor_t *videos, vdgx_tensor_t *audios);

//  Frees Gemma now (e.g. before the DiT loads); the next miss loads it again.
void ltx2_prompt_release_gemma (ltx2_prompt_t *self);
bool ltx2_prompt_gemma_loaded (ltx2_prompt_t *self);
//  Counters: Gemma loads, cache hits, cache misses.
void ltx2_prompt_stats (ltx2_prompt_t *self, int *loads, int *hits, int *misses);
//  Whether AUTO frees Gemma after encoding, and the rule itself (host_bytes < gemma + reserve).
bool ltx2_prompt_frees_gemma (ltx2_prompt_t *self);
bool ltx2_prompt_memory_short (size_t host_bytes, size_t gemma_bytes, size_t reserve_bytes);

void ltx2_prompt_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
