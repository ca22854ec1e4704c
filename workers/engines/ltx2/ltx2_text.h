/*  ltx2_text.h - the LTX-2 / LTX-2.3 text path after the language model (class ltx2_text):
    from all hidden states of the text encoder (Gemma 3) and the prompt's token mask to the
    video and audio contexts the DiT attends to.

    Two arrangements, chosen from the checkpoint's __metadata__ config (transformer section) as
    the official code chooses them:
    - LTX-2 (19B; "V1": none of the caption_proj_* keys): every hidden state is normalised over
      the valid tokens (mean = sum / (n*D + 1e-6), value = 8 (x - mean) / (max - min + 1e-6)),
      flattened with feature index d*L + l, projected by text_embedding_projection.
      aggregate_embed (no bias); the video and audio connectors take the same features.
    - LTX-2.3 (22B; "V2": caption_proj_before_connector true, caption_projection_first_linear,
      caption_projection_second_linear and caption_proj_input_norm false): every token of every
      hidden state is RMS-normalised over D (eps 1e-6, no weight), flattened d*L + l, scaled by
      sqrt(out_dim / D) and projected by video_aggregate_embed / audio_aggregate_embed (with
      bias) - the caption projection, done here instead of in the DiT.
    Padding tokens are 0 in the features. Each connector (model.diffusion_model.{video,audio}_
    embeddings_connector) moves the valid tokens to the front in order, fills position j >= n
    with learnable_registers [j mod R], attends over everything, and runs its blocks:
    x += attn (rms (x)), x += ff (rms (x)); then a final rms (all rms: no weight, eps 1e-6).
    The attention has biased q/k/v/out projections, q/k RMSNorms over all heads (weight),
    split RoPE (positions 0..T-1 over max_pos, frequencies theta^linspace(0,1,C/2)*pi/2 in
    float64 or float32 as frequencies_precision says, rounded to float32; angle float32
    grid * (2 pos/max_pos - 1); each head takes its own contiguous chunk of the frequencies
    and rotates its halves), and with connector_apply_gated_attention per-head gates
    2 sigmoid (to_gate_logits (x)) on its output. The FFN is Linear, GELU (tanh), Linear.
    Connector sizes: connector_num_attention_heads / _attention_head_dim (audio_connector_*
    for the audio one, falling back to the video values; defaults 30 x 128), layers counted
    from the checkpoint; registers from learnable_registers' shape.
    One prompt at a time (batch 1), as the official pipeline encodes.
*/
#ifndef LTX2_TEXT_H_INCLUDED
#define LTX2_TEXT_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "vdgx_backend.h"
#include "vdgx_ckpt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int dim;                    //  heads * head_dim
    int heads, head_dim, layers, registers;
    bool gated;                 //  gated attention (LTX-2.3)
} ltx2_connector_config_t;

typedef struct {
    bool v2;                    //  LTX-2.3 arrangement
    int feature_dim;            //  D * L of the flattened hidden states
    int video_dim, audio_dim;   //  context widths
    double rope_theta;          //  10000
    int rope_max_pos;           //  connector_positional_embedding_max_pos [0]
    bool rope_double;           //  frequencies_precision == "float64"
    ltx2_connector_config_t video, audio;
} ltx2_text_config_t;

typedef struct _ltx2_text_t ltx2_text_t;

//  Loads the text path from an LTX-2 / LTX-2.3 checkpoint (.safetensors with its __metadata__
//  config, or the open checkpoint; the checkpoint is only borrowed while loading). Weights in
//  wfmt (F32, BF16, FP8_E4M3). NULL with *err naming the tensor or setting.
ltx2_text_t *ltx2_text_new (const char *path, vdgx_backend_t *backend, vdgx_wfmt_t wfmt, char **err);
ltx2_text_t *ltx2_text_new_from_ckpt (vdgx_ckpt_t *ckpt, vdgx_backend_t *backend, vdgx_wfmt_t wfmt,
                                      char **err);
void ltx2_text_destroy (ltx2_text_t **self_p);

const ltx2_text_config_t *ltx2_text_config (ltx2_text_t *self);
const char *ltx2_text_error (ltx2_text_t *self);
size_t ltx2_text_weight_bytes (ltx2_text_t *self);

//  Taps (refcheck, debugging): "normed_concat" (V1) and "features_video" / "features_audio"
//  ([n, *]: the valid tokens only; padding rows are 0 (V1) or the bias (V2) and never reach
//  the output), "video_conn.registers_in", "video_conn.blocks.<i>", "video_conn.out" and the
//  same for audio_conn ([T, C]).
typedef void (ltx2_text_tap_fn) (void *arg, const char *name, const vdgx_tensor_t *t);
void ltx2_text_set_tap (ltx2_text_t *self, ltx2_text_tap_fn *fn, void *arg);

//  hidden: the text encoder's hidden states [S, 1, T, D] on this backend (S*D = feature_dim);
//  mask: host [T], 1 = token. Allocates video [T, video_dim] and audio [T, audio_dim] in the
//  backend's act dtype (caller releases). The returned attention mask is all ones (registers
//  fill the padding), so it is not handed out.
int ltx2_text_encode (ltx2_text_t *self, const vdgx_tensor_t *hidden, const uint8_t *mask,
                      vdgx_tensor_t *video, vdgx_tensor_t *audio);

//  Connector RoPE tables for positions 0..len-1: cos/sin [len, dim/2] (head h of head_dim uses
//  columns [h*head_dim/2, (h+1)*head_dim/2)).
void ltx2_text_rope (double theta, int max_pos, bool double_precision, int dim, int len,
                     float *cos, float *sin);

void ltx2_text_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
