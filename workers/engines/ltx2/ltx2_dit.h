/*  ltx2_dit.h - the LTX-2 / LTX-2.3 two-stream audio+video diffusion transformer (LTXModel,
    model type AudioVideo) on a compute backend (class ltx2_dit).

    One forward is one denoising call for both streams: video tokens [B, Nv, in_channels]
    (patch 1x1x1, f-major, then h, then w) and audio tokens [B, Na, audio_in_channels]
    (feature index c*16 + mel_bin), each with per-token sigmas, give the two velocities.
    Per block: video self-attention (adaLN rows shift, scale, gate = 0, 1, 2), text
    cross-attention, the same for audio, audio<->video cross-attention (a2v: Q video, K/V
    audio; v2a: Q audio, K/V pre-a2v video; tables rows scale, shift, scale, shift, gate), then
    the two FFNs (GELU tanh; rows 3, 4, 5). q/k RMSNorms span all heads; split RoPE with
    per-head chunks of the frequency vector, positions as the official code computes them
    (middle of each [start, end) bound / max_pos, float32 or bf16 video positions).

    Everything that differs between LTX-2 (19B, first release) and LTX-2.3 (22B) comes from
    the checkpoint's __metadata__ "config" (transformer section), read by
    ltx2_dit_config_from_ckpt, and runs through one code path:
    - caption projection in the DiT (LTX-2) or before the connectors (caption_proj_before_
      connector: LTX-2.3, contexts arrive at the stream widths);
    - apply_gated_attention: per-head 2 sigmoid (to_gate_logits (query input)) on every
      attention's output before to_out;
    - cross_attention_adaln: 9-row block tables, the text cross-attention query modulated by
      rows 6 (shift), 7 (scale) and gated by row 8; with use_prompt_adaln_single the context
      modulated by prompt_scale_shift_table + prompt_adaln_single (sigma);
    - ff_bias / audio_ff_bias;
    - the a<->v gate timestep: the first release embeds each modality's own per-token sigma,
      the current code (LTX-2.3 checkpoints) the other modality's per-sample sigma;
    - av_ca_timestep_scale_multiplier, frequencies_precision (float64 frequency grid).

    Weights are read through a vdgx_wsrc_t under their official names (the `model.diffusion_
    model.` prefix is the map's: ltx2_dit_map). Block linears (attention projections, gates,
    FFNs, a<->v attention) are vdgx_linear_t in the requested format (FP8 checkpoint tensors
    stay FP8 at fp8); the timestep embedders, adaLN linears, patchify / caption / output
    projections in F32 (BF16 when the backend computes in BF16); modulation tables always F32.
    One backend thread at a time (as every backend). Both streams are required in a forward
    (the official pipelines always run audio and video together).
*/
#ifndef LTX2_DIT_H_INCLUDED
#define LTX2_DIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vdgx_backend.h"
#include "vdgx_ckpt.h"
#include "vdgx_wsrc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int layers;                     //  num_layers (48)
    //  video stream: dim = heads * head_dim
    int heads, head_dim;            //  32 x 128
    int in_channels, out_channels;  //  128, 128
    int cross_attention_dim;        //  video context width inside the DiT (4096)
    //  audio stream
    int audio_heads, audio_head_dim;            //  32 x 64
    int audio_in_channels, audio_out_channels;  //  128, 128
    int audio_cross_attention_dim;  //  a<->v attention width and audio context width (2048)
    //  text contexts
    bool caption_projection;        //  LTX-2: caption_projection / audio_caption_projection here
    int caption_channels;           //  their input width (3840); 0 without them
    //  positions
    double rope_theta;              //  positional_embedding_theta (10000)
    int max_pos [3];                //  positional_embedding_max_pos (20, 2048, 2048)
    int audio_max_pos;              //  audio_positional_embedding_max_pos [0] (20)
    bool rope_double;               //  frequencies_precision == "float64"
    //  timesteps
    double timestep_scale;          //  timestep_scale_multiplier (1000)
    double av_ca_timestep_scale;    //  av_ca_timestep_scale_multiplier (code default 1)
    bool av_gate_other_sigma;       //  a<->v gate from the other modality's sigma (current code)
    //  LTX-2.3 switches
    bool gated_attention;           //  apply_gated_attention
    bool cross_attention_adaln;     //  9-row tables, modulated/gated text cross-attention
    bool prompt_adaln;              //  use_prompt_adaln_single (only with cross_attention_adaln)
    bool ff_bias, audio_ff_bias;
    double norm_eps;                //  1e-6
} ltx2_dit_config_t;

//  Configuration from a checkpoint's __metadata__ "config" JSON (its "transformer" object;
//  missing keys take the official class defaults; settings this code does not implement are
//  refused). av_gate_other_sigma is set for the current-code checkpoints (LTX-2.3: the
//  caption_proj_before_connector arrangement, or model_version >= 2.3). -1 with *err.
int ltx2_dit_config_from_json (const char *config_json, const char *model_version,
                               ltx2_dit_config_t *cfg, char **err);
int ltx2_dit_config_from_ckpt (vdgx_ckpt_t *ckpt, ltx2_dit_config_t *cfg, char **err);
//  The released configurations: "19b" (LTX-2) and "22b" (LTX-2.3, values as reported for the
//  real file). -1 when unknown.
int ltx2_dit_config_preset (const char *name, ltx2_dit_config_t *cfg);

//  The official checkpoint layout (single-file LTX-2 / LTX-2.3: prefix model.diffusion_model.).
extern const vdgx_wsrc_map_t ltx2_dit_map;

//  Bytes of the DiT's weights with the block linears in fmt (the rest F32, or BF16 when
//  small_bf16: a backend computing in BF16).
uint64_t ltx2_dit_weight_bytes (const ltx2_dit_config_t *cfg, vdgx_wfmt_t fmt, bool small_bf16);
//  Parameter count (all tensors).
uint64_t ltx2_dit_param_count (const ltx2_dit_config_t *cfg);

typedef struct _ltx2_dit_t ltx2_dit_t;

//  Creates the DiT from a weight source (a checkpoint through ltx2_dit_map, or a random
//  source) and a configuration. precision: "fp32", "bf16" (NULL), "fp8", "nvfp4", ... for the
//  block linears. NULL with *err naming the tensor or setting.
ltx2_dit_t *ltx2_dit_new (vdgx_backend_t *backend, vdgx_wsrc_t *src, const ltx2_dit_config_t *cfg,
                          const char *precision, char **err);
void ltx2_dit_destroy (ltx2_dit_t **self_p);
const ltx2_dit_config_t *ltx2_dit_config (ltx2_dit_t *self);
//  Bytes of weights this instance holds on its backend.
size_t ltx2_dit_bytes (ltx2_dit_t *self);
//  Video positions rounded to bf16 before the RoPE arithmetic, as the official bf16 pipeline
//  does (default: when the backend computes in BF16).
void ltx2_dit_set_bf16_positions (ltx2_dit_t *self, bool on);

//  Observes intermediates (reference checks): names as in the reference vectors without the
//  "dit." prefix: "pre.video.x", "pre.video.timesteps", "pre.video.embedded_timestep",
//  "pre.video.context", "pre.video.prompt_timestep", "pre.video.cross_scale_shift_timestep",
//  "pre.video.cross_gate_timestep" (and audio), "blk<i>.video.attn1" / "attn2" / "ff",
//  "blk<i>.a2v", "blk<i>.v2a", "blk<i>.video.out", "blk0.video.attn1.q_normed", ...
typedef void (ltx2_dit_tap_fn) (void *arg, const char *name, const vdgx_tensor_t *t);
void ltx2_dit_set_tap (ltx2_dit_t *self, ltx2_dit_tap_fn *fn, void *arg);

//  One DiT call for both streams (batch B). Host arrays are f32; contexts live on this backend
//  (any float dtype; [B, L, C] or [L, C] when B is 1): C = caption_channels with the caption
//  projection, else cross_attention_dim (video) / audio_cross_attention_dim (audio).
typedef struct {
    int64_t batch;
    int64_t video_tokens;               //  Nv
    const float *video_latent;          //  [B, Nv, in_channels]
    const float *video_timesteps;       //  [B, Nv] per-token sigma (denoise mask * sigma)
    const float *video_sigma;           //  [B] per-sample sigma (prompt adaLN, a<->v gate)
    const float *video_positions;       //  [B, 3, Nv, 2] pixel-space [start, end) (t in s)
    const vdgx_tensor_t *video_context;
    int64_t audio_tokens;               //  Na
    const float *audio_latent;          //  [B, Na, audio_in_channels]
    const float *audio_timesteps;       //  [B, Na]
    const float *audio_sigma;           //  [B]
    const float *audio_positions;       //  [B, 1, Na, 2] [start, end) in seconds
    const vdgx_tensor_t *audio_context;
    float *video_out;                   //  [B, Nv, out_channels] velocity
    float *audio_out;                   //  [B, Na, audio_out_channels]
} ltx2_dit_step_t;

int ltx2_dit_forward (ltx2_dit_t *self, const ltx2_dit_step_t *step, char **err);

//  Token positions as the official latent tools compute them. Video latent (frames, h, w)
//  with the VAE's scale factors (8, 32, 32) at fps: [3, N, 2] (f-major, then h, then w):
//  time [max(8f - 7, 0), max(8f + 1, 0)) / fps (the causal fix), h [32h, 32h + 32), w alike.
void ltx2_dit_video_positions (int64_t frames, int64_t height, int64_t width, double fps,
                               float *positions);
//  Audio latent frames T: [1, T, 2], [max(4i - 3, 0), max(4i + 1, 0)) * hop / sample_rate
//  (hop 160, 16 kHz: the official audio latent tools).
void ltx2_dit_audio_positions (int64_t frames, float *positions);

//  Split-RoPE tables of one modality: positions [naxes, N, 2] -> cos/sin [N, dim/2] (head h
//  of `heads` uses columns [h*dim/(2 heads), (h+1)*dim/(2 heads))). Frequencies
//  theta^linspace(0,1,dim/(2 naxes)) * pi/2 (float64 or float32 grid, rounded to float32),
//  angle grid * (2 mid/max_pos - 1) in float32, identity pairs first. bf16: positions (and
//  the middle and the division) rounded to bf16 as in the bf16 pipeline.
void ltx2_dit_rope (const float *positions, int naxes, int64_t n, const int *max_pos, double theta,
                    bool double_grid, bool bf16, int dim, float *cos_t, float *sin_t);

void ltx2_dit_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
