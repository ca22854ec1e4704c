#!/usr/bin/python3
"""vs_torch.py - our CPU ops and model pieces against the same work written with PyTorch ops,
in one interleaved run, printing the ratios (PyTorch time / our time: > 1 means we are faster).

    tools/bench_cpu/vs_torch.py [--build build] [--threads 2] [--reps 5] [--items a,b,...]
                                [--quick]

Items (real Wan 2.1 1.3B / umT5-XXL / Wan-VAE shapes, fp32 on both sides):
  linear        F.linear [3120,1536] x [8960,1536]^T + bias, and our bf16 / fp8 / nvfp4 / nf4
                weights on the same shape (vdgx-bench-cpu linear)
  sdpa          self-attention [1, 3120 tokens, 12 heads, 128] (vdgx-bench-cpu attention); the
                PyTorch side is softmax(q k^T * scale) v with torch.matmul (Debian's torch 1.13
                has no F.scaled_dot_product_attention; 2.x on the CPU runs the same math)
  conv3d        causal 3x3x3 conv, 384 -> 384 channels, 3 (+2 cached) frames of 32x32
  dit1560, dit3120   DiT forward (patch embedding, time / text embeddings, 2 blocks, head) at
                1,560 and 3,120 tokens (832x480, 1 and 2 latent frames; vdgx-bench-dit --blocks 2)
  vae           Wan-VAE decode of a 16x2x16x16 latent (5 frames of 128x128), causal caches
                per latent frame as the official decoder does (vdgx-bench-cpu vae)
  t5            umT5-XXL encoder, 2 layers, 512 tokens (vdgx-bench-t5 --layers 2 --wfmt f32)
  ltx2vae       LTX-2.3 video VAE decoder at full width (407 M weights, the 2.3 block list,
                no timestep conditioning) on a 128x2x2x2 latent (9 frames of 64x64); the
                official VideoDecoder structure: non-causal convs (first / last frame
                replicated, reflect padding), PixelNorm, depth-to-space (vdgx-bench-cpu ltx2vae)
  vocoder       LTX-2 19B vocoder (HiFi-GAN, 1024 channels), one second: a 100-frame stereo
                log-mel -> 24 kHz (vdgx-bench-cpu vocoder 2 100); not in the default list
  vocoder23     LTX-2.3 22B vocoder + bandwidth extension (BigVGAN v2, 1536 / 512 channels,
                anti-aliased SnakeBeta, causal STFT log-mel, Hann-sinc x3 skip), one second ->
                48 kHz (vdgx-bench-cpu vocoder 23 100); not in the default list

Each measurement is a fresh process (ours: the C tool; PyTorch: this script with --torch-item)
that builds its inputs, runs one untimed warm-up and one timed run; ours and PyTorch's
alternate for every repetition, so both see the same machine load. Peak memory is each
process's maximum resident set (os.wait4), PyTorch's interpreter and libraries included.
PyTorch is used only here (Debian python3-torch; scripts/setup.sh --bench installs it).
"""
import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import time

# ------------------------------------------------------------------------------------------
# PyTorch side (runs in a child process: python3 vs_torch.py --torch-item NAME --threads N)

def torch_item(name, threads):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    torch.set_grad_enabled(False)

    def attention(q, k, v, scale, bias=None):
        # q [B,Lq,n,d], k/v [B,Lk,n,d]
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        s = torch.matmul(q, k.transpose(-2, -1)) * scale
        if bias is not None:
            s = s + bias
        return torch.matmul(torch.softmax(s.float(), dim=-1), v).transpose(1, 2)

    class RMSNorm(nn.Module):
        def __init__(self, dim, eps=1e-6):
            super().__init__()
            self.eps, self.weight = eps, nn.Parameter(torch.ones(dim))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight

    # ---- Wan 2.1 DiT (official structure: WanModel, WanAttentionBlock, rope in float64)
    def rope_params(max_len, dim, theta=10000):
        f = torch.outer(torch.arange(max_len), 1.0 / torch.pow(theta, torch.arange(0, dim, 2).to(torch.float64).div(dim)))
        return torch.polar(torch.ones_like(f), f)

    def rope_apply(x, grid, freqs):
        n, c = x.size(2), x.size(3) // 2
        fr = freqs.split([c - 2 * (c // 3), c // 3, c // 3], dim=1)
        f, h, w = grid
        L = f * h * w
        xi = torch.view_as_complex(x[0, :L].to(torch.float64).reshape(L, n, -1, 2))
        fi = torch.cat([fr[0][:f].view(f, 1, 1, -1).expand(f, h, w, -1),
                        fr[1][:h].view(1, h, 1, -1).expand(f, h, w, -1),
                        fr[2][:w].view(1, 1, w, -1).expand(f, h, w, -1)], dim=-1).reshape(L, 1, -1)
        return torch.view_as_real(xi * fi).flatten(2).unsqueeze(0).float()

    class SelfAttn(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.n, self.d = heads, dim // heads
            self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
            self.norm_q, self.norm_k = RMSNorm(dim), RMSNorm(dim)

        def forward(self, x, grid, freqs):
            b, s = x.shape[:2]
            q = self.norm_q(self.q(x)).view(b, s, self.n, self.d)
            k = self.norm_k(self.k(x)).view(b, s, self.n, self.d)
            v = self.v(x).view(b, s, self.n, self.d)
            x = attention(rope_apply(q, grid, freqs), rope_apply(k, grid, freqs), v, self.d ** -0.5)
            return self.o(x.flatten(2))

    class CrossAttn(SelfAttn):
        def forward(self, x, ctx):
            b = x.shape[0]
            q = self.norm_q(self.q(x)).view(b, -1, self.n, self.d)
            k = self.norm_k(self.k(ctx)).view(b, -1, self.n, self.d)
            v = self.v(ctx).view(b, -1, self.n, self.d)
            return self.o(attention(q, k, v, self.d ** -0.5).flatten(2))

    class Block(nn.Module):
        def __init__(self, dim, ffn, heads):
            super().__init__()
            self.norm1 = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
            self.self_attn = SelfAttn(dim, heads)
            self.norm3 = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=True)
            self.cross_attn = CrossAttn(dim, heads)
            self.norm2 = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
            self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(approximate='tanh'), nn.Linear(ffn, dim))
            self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim ** 0.5)

        def forward(self, x, e, ctx, grid, freqs):
            e = (self.modulation + e).chunk(6, dim=1)
            y = self.self_attn(self.norm1(x) * (1 + e[1]) + e[0], grid, freqs)
            x = x + y * e[2]
            x = x + self.cross_attn(self.norm3(x), ctx)
            y = self.ffn(self.norm2(x) * (1 + e[4]) + e[3])
            return x + y * e[5]

    class DiT(nn.Module):
        def __init__(self, blocks, dim=1536, ffn=8960, heads=12):
            super().__init__()
            self.dim = dim
            self.patch_embedding = nn.Conv3d(16, dim, (1, 2, 2), stride=(1, 2, 2))
            self.text_embedding = nn.Sequential(nn.Linear(4096, dim), nn.GELU(approximate='tanh'), nn.Linear(dim, dim))
            self.time_embedding = nn.Sequential(nn.Linear(256, dim), nn.SiLU(), nn.Linear(dim, dim))
            self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim * 6))
            self.blocks = nn.ModuleList(Block(dim, ffn, heads) for _ in range(blocks))
            self.head_norm = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
            self.head = nn.Linear(dim, 64)
            self.head_modulation = nn.Parameter(torch.randn(1, 2, dim) / dim ** 0.5)
            d = dim // heads
            self.freqs = torch.cat([rope_params(1024, d - 4 * (d // 6)), rope_params(1024, 2 * (d // 6)),
                                    rope_params(1024, 2 * (d // 6))], dim=1)

        def forward(self, lat, t, ctx):
            x = self.patch_embedding(lat[None])
            grid = tuple(x.shape[2:])
            x = x.flatten(2).transpose(1, 2)
            half = 128
            sinus = torch.outer(t.to(torch.float64), torch.pow(10000, -torch.arange(half).to(torch.float64).div(half)))
            sinus = torch.cat([torch.cos(sinus), torch.sin(sinus)], dim=1).float()
            e = self.time_embedding(sinus)
            e0 = self.time_projection(e).unflatten(1, (6, self.dim))
            ctx = self.text_embedding(ctx)
            for b in self.blocks:
                x = b(x, e0, ctx, grid, self.freqs)
            e = (self.head_modulation + e.unsqueeze(1)).chunk(2, dim=1)
            x = self.head(self.head_norm(x) * (1 + e[1]) + e[0])
            f, h, w = grid
            x = x.view(f, h, w, 1, 2, 2, 16)
            return torch.einsum('fhwpqrc->cfphqwr', x).reshape(16, f, h * 2, w * 2)

    # ---- Wan-VAE decoder (official structure: CausalConv3d with feature caches per chunk)
    class CausalConv3d(nn.Conv3d):
        def __init__(self, cin, cout, k, padding=0):
            super().__init__(cin, cout, k)
            p = (padding,) * 3 if isinstance(padding, int) else padding
            self.pad = (p[2], p[2], p[1], p[1], 2 * p[0], 0)

        def forward(self, x, cache=None):
            p = list(self.pad)
            if cache is not None and p[4] > 0:
                x = torch.cat([cache, x], dim=2)
                p[4] -= cache.shape[2]
            return super().forward(F.pad(x, p))

    class ChanRMS(nn.Module):
        def __init__(self, dim, images=False):
            super().__init__()
            shape = (dim, 1, 1) if images else (dim, 1, 1, 1)
            self.scale, self.gamma = dim ** 0.5, nn.Parameter(torch.ones(shape))

        def forward(self, x):
            return F.normalize(x, dim=1) * self.scale * self.gamma

    class Cache:
        def __init__(self):
            self.feats = {}

        def conv(self, conv, x):
            key = id(conv)
            prev = self.feats.get(key)
            nxt = x[:, :, -2:].clone()
            if nxt.shape[2] < 2 and prev is not None:
                nxt = torch.cat([prev[:, :, -1:], nxt], dim=2)
            y = conv(x, prev)
            self.feats[key] = nxt
            return y

    class Res(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.n1, self.c1 = ChanRMS(cin), CausalConv3d(cin, cout, 3, 1)
            self.n2, self.c2 = ChanRMS(cout), CausalConv3d(cout, cout, 3, 1)
            self.sc = CausalConv3d(cin, cout, 1) if cin != cout else None

        def forward(self, x, c):
            h = c.conv(self.sc, x) if self.sc is not None else x
            y = c.conv(self.c1, F.silu(self.n1(x)))
            y = c.conv(self.c2, F.silu(self.n2(y)))
            return y + h

    class Attn(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.norm = ChanRMS(dim, images=True)
            self.to_qkv, self.proj = nn.Conv2d(dim, dim * 3, 1), nn.Conv2d(dim, dim, 1)

        def forward(self, x, c):
            idt = x
            b, ch, t, h, w = x.shape
            x = self.norm(x.permute(0, 2, 1, 3, 4).reshape(b * t, ch, h, w))
            q, k, v = self.to_qkv(x).reshape(b * t, 1, ch * 3, -1).permute(0, 1, 3, 2).contiguous().chunk(3, dim=-1)
            x = torch.matmul(torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * ch ** -0.5, dim=-1), v)
            x = self.proj(x.squeeze(1).permute(0, 2, 1).reshape(b * t, ch, h, w))
            return x.view(b, t, ch, h, w).permute(0, 2, 1, 3, 4) + idt

    class Up(nn.Module):
        def __init__(self, dim, temporal):
            super().__init__()
            self.conv = nn.Conv2d(dim, dim // 2, 3, padding=1)
            self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), (1, 0, 0)) if temporal else None

        def forward(self, x, c):
            b, ch, t, h, w = x.shape
            if self.time_conv is not None:
                if id(self) not in c.feats:
                    c.feats[id(self)] = True     # first chunk: no time conv ("Rep")
                else:
                    x = c.conv(self.time_conv, x).reshape(b, 2, ch, t, h, w)
                    x = torch.stack((x[:, 0], x[:, 1]), 3).reshape(b, ch, t * 2, h, w)
                    t *= 2
            x = x.permute(0, 2, 1, 3, 4).reshape(b * t, ch, h, w)
            x = self.conv(F.interpolate(x, scale_factor=2.0, mode='nearest-exact'))
            return x.view(b, t, ch // 2, 2 * h, 2 * w).permute(0, 2, 1, 3, 4)

    class VAEDecoder(nn.Module):
        def __init__(self, dim=96, z=16):
            super().__init__()
            mult = [4, 4, 4, 2, 1]
            dims = [dim * m for m in mult]
            self.conv2 = CausalConv3d(z, z, 1)
            self.conv1 = CausalConv3d(z, dims[0], 3, 1)
            self.middle = nn.ModuleList([Res(dims[0], dims[0]), Attn(dims[0]), Res(dims[0], dims[0])])
            ups = []
            for i, (cin, cout) in enumerate(zip(dims[:-1], dims[1:])):
                if i in (1, 2, 3):
                    cin //= 2
                for _ in range(3):
                    ups.append(Res(cin, cout))
                    cin = cout
                if i != 3:
                    ups.append(Up(cout, i < 2))
            self.ups = nn.ModuleList(ups)
            self.head_norm, self.head = ChanRMS(dims[-1]), CausalConv3d(dims[-1], 3, 3, 1)

        def forward(self, z):
            c = Cache()
            x = self.conv2(z)
            out = []
            for i in range(z.shape[2]):
                y = c.conv(self.conv1, x[:, :, i:i + 1])
                for m in list(self.middle) + list(self.ups):
                    y = m(y, c)
                out.append(c.conv(self.head, F.silu(self.head_norm(y))))
            return torch.cat(out, 2).clamp(-1, 1)

    # ---- LTX-2.3 video VAE decoder (official VideoDecoder structure, timestep_conditioning off)
    class LtxConv(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv3d(cin, cout, 3, padding=(0, 1, 1), padding_mode='reflect')

        def forward(self, x):
            x = torch.cat([x[:, :, :1], x, x[:, :, -1:]], dim=2)
            return self.conv(x)

    def pixel_norm(x):
        return x / torch.sqrt(torch.mean(x ** 2, dim=1, keepdim=True) + 1e-8)

    class LtxRes(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1, self.conv2 = LtxConv(c, c), LtxConv(c, c)

        def forward(self, x):
            h = self.conv1(F.silu(pixel_norm(x)))
            return x + self.conv2(F.silu(pixel_norm(h)))

    class LtxUp(nn.Module):
        def __init__(self, c, stride, mult):
            super().__init__()
            self.stride = stride
            self.conv = LtxConv(c, c * stride[0] * stride[1] * stride[2] // mult)

        def forward(self, x):
            x = self.conv(x)
            p1, p2, p3 = self.stride
            b, c, f, h, w = x.shape
            c //= p1 * p2 * p3
            x = x.reshape(b, c, p1, p2, p3, f, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
            x = x.reshape(b, c, f * p1, h * p2, w * p3)
            return x[:, :, 1:] if p1 == 2 else x

    class LtxDecoder(nn.Module):
        def __init__(self):
            super().__init__()
            blocks = [('res', 2), ('up', (2, 2, 2), 2), ('res', 2), ('up', (2, 2, 2), 1),
                      ('res', 4), ('up', (2, 1, 1), 2), ('res', 6), ('up', (1, 2, 2), 2), ('res', 4)]
            c = 1024
            self.conv_in = LtxConv(128, c)
            mods = []
            for blk in blocks:
                if blk[0] == 'res':
                    mods.append(nn.Sequential(*[LtxRes(c) for _ in range(blk[1])]))
                else:
                    mods.append(LtxUp(c, blk[1], blk[2]))
                    c //= blk[2]
            self.up_blocks = nn.ModuleList(mods)
            self.conv_out = LtxConv(c, 48)
            self.register_buffer('std', torch.ones(128))
            self.register_buffer('mean', torch.zeros(128))

        def forward(self, z):
            x = z * self.std.view(1, -1, 1, 1, 1) + self.mean.view(1, -1, 1, 1, 1)
            x = self.conv_in(x)
            for m in self.up_blocks:
                x = m(x)
            x = self.conv_out(F.silu(pixel_norm(x)))
            b, _, f, h, w = x.shape
            x = x.reshape(b, 3, 4, 4, f, h, w).permute(0, 1, 4, 5, 3, 6, 2)
            return x.reshape(b, 3, f, h * 4, w * 4)

    # ---- umT5 encoder layer (official T5SelfAttention: pre-norm, relative position bias per
    #      layer, no 1/sqrt(d) scaling, gated-GELU FFN)
    class T5Layer(nn.Module):
        def __init__(self, dim=4096, ffn=10240, heads=64, buckets=32):
            super().__init__()
            self.n, self.d = heads, dim // heads
            self.norm1, self.norm2 = RMSNorm(dim), RMSNorm(dim)
            self.q, self.k, self.v, self.o = (nn.Linear(dim, dim, bias=False) for _ in range(4))
            self.gate = nn.Sequential(nn.Linear(dim, ffn, bias=False), nn.GELU(approximate='tanh'))
            self.fc1, self.fc2 = nn.Linear(dim, ffn, bias=False), nn.Linear(ffn, dim, bias=False)
            self.pos = nn.Embedding(buckets, heads)
            self.buckets = buckets

        def bias(self, L):
            rel = torch.arange(L)[None, :] - torch.arange(L)[:, None]
            nb = self.buckets // 2
            b = (rel > 0).long() * nb
            rel = rel.abs()
            exact = nb // 2
            large = exact + (torch.log(rel.float().clamp(min=1) / exact) / math.log(128 / exact) * (nb - exact)).long()
            b = b + torch.where(rel < exact, rel, large.clamp(max=nb - 1))
            return self.pos(b).permute(2, 0, 1).unsqueeze(0)

        def forward(self, x):
            b, L = x.shape[:2]
            y = self.norm1(x)
            q, k, v = (m(y).view(b, L, self.n, self.d) for m in (self.q, self.k, self.v))
            x = x + self.o(attention(q, k, v, 1.0, self.bias(L)).reshape(b, L, -1))
            y = self.norm2(x)
            return x + self.fc2(self.gate(y) * self.fc1(y))

    # ---- LTX-2 vocoders (official structure: Vocoder with ResBlock1 or AMPBlock1 + anti-aliased
    # SnakeBeta, VocoderWithBWE: causal STFT log-mel, BWE generator, Hann-sinc x3 skip)
    class SnakeBeta(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.alpha, self.beta = nn.Parameter(torch.zeros(c)), nn.Parameter(torch.zeros(c))

        def forward(self, x):
            a, b = self.alpha.exp()[None, :, None], self.beta.exp()[None, :, None]
            return x + (1.0 / (b + 1e-9)) * torch.sin(x * a).pow(2)

    class AntiAliased(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.act = SnakeBeta(c)
            self.up, self.down = nn.Parameter(torch.zeros(1, 1, 12)), nn.Parameter(torch.zeros(1, 1, 12))

        def forward(self, x):
            c = x.shape[1]
            x = F.pad(x, (5, 5), mode='replicate')
            x = 2 * F.conv_transpose1d(x, self.up.expand(c, -1, -1), stride=2, groups=c)[..., 15:-15]
            x = F.pad(self.act(x), (5, 6), mode='replicate')
            return F.conv1d(x, self.down.expand(c, -1, -1), stride=2, groups=c)

    class VocResBlock(nn.Module):
        def __init__(self, c, k, amp):
            super().__init__()
            self.amp = amp
            self.c1 = nn.ModuleList(nn.Conv1d(c, c, k, dilation=d, padding=d * (k - 1) // 2) for d in (1, 3, 5))
            self.c2 = nn.ModuleList(nn.Conv1d(c, c, k, padding=(k - 1) // 2) for _ in range(3))
            if amp:
                self.a1 = nn.ModuleList(AntiAliased(c) for _ in range(3))
                self.a2 = nn.ModuleList(AntiAliased(c) for _ in range(3))

        def forward(self, x):
            for i in range(3):
                xt = self.a1[i](x) if self.amp else F.leaky_relu(x, 0.1)
                xt = self.c1[i](xt)
                xt = self.a2[i](xt) if self.amp else F.leaky_relu(xt, 0.1)
                x = x + self.c2[i](xt)
            return x

    class Generator(nn.Module):
        def __init__(self, c0, rates, kernels, amp, final):
            super().__init__()
            self.amp, self.final = amp, final
            self.pre = nn.Conv1d(128, c0, 7, padding=3)
            self.ups = nn.ModuleList(nn.ConvTranspose1d(c0 >> i, c0 >> (i + 1), k, r, padding=(k - r) // 2)
                                     for i, (r, k) in enumerate(zip(rates, kernels)))
            self.res = nn.ModuleList(nn.ModuleList(VocResBlock(c0 >> (i + 1), k, amp) for k in (3, 7, 11))
                                     for i in range(len(rates)))
            cf = c0 >> len(rates)
            self.act_post = AntiAliased(cf) if amp else None
            self.post = nn.Conv1d(cf, 2, 7, padding=3, bias=not amp)

        def forward(self, x):
            x = self.pre(x)
            for up, res in zip(self.ups, self.res):
                if not self.amp:
                    x = F.leaky_relu(x, 0.1)
                x = up(x)
                x = torch.stack([r(x) for r in res], dim=0).mean(dim=0)
            x = self.act_post(x) if self.amp else F.leaky_relu(x, 0.01)
            return self.final(self.post(x))

    class VocoderBWE(nn.Module):
        def __init__(self):
            super().__init__()
            self.voc = Generator(1536, (5, 2, 2, 2, 2, 2), (11, 4, 4, 4, 4, 4), True, lambda x: x.clamp(-1, 1))
            self.bwe = Generator(512, (6, 5, 2, 2, 2), (12, 11, 4, 4, 4), True, lambda x: x)
            self.basis, self.mel = nn.Parameter(torch.zeros(514, 1, 512)), nn.Parameter(torch.zeros(64, 257))
            t = (torch.arange(43) / 3 - 7) * 0.99
            w = torch.cos(t.clamp(-6, 6) * math.pi / 6 / 2) ** 2
            self.register_buffer('skip', (torch.sinc(t) * w * 0.99 / 3).view(1, 1, -1))

        def forward(self, mel):
            x = self.voc(mel.transpose(2, 3).reshape(1, 128, -1))
            n = x.shape[-1]
            if n % 80:
                x = F.pad(x, (0, 80 - n % 80))
            spec = F.conv1d(F.pad(x.reshape(2, 1, -1), (432, 0)), self.basis, stride=80)
            mag = torch.sqrt(spec[:, :257] ** 2 + spec[:, 257:] ** 2)
            logmel = torch.log(torch.clamp(torch.matmul(self.mel, mag), min=1e-5))
            res = self.bwe(logmel.reshape(1, 128, -1))
            skip = 3 * F.conv_transpose1d(F.pad(x, (7, 7), mode='replicate'), self.skip.expand(2, -1, -1),
                                          stride=3, groups=2)[..., 42:-40]
            return torch.clamp(res + skip, -1, 1)[..., :3 * n]

    # ---- build the item, warm up, time one run
    if name == 'linear':
        x, w, b = torch.randn(3120, 1536), torch.randn(8960, 1536) / 40, torch.randn(8960)
        run = lambda: F.linear(x, w, b)
    elif name == 'sdpa':
        q, k, v = (torch.randn(1, 3120, 12, 128) for _ in range(3))
        run = lambda: attention(q, k, v, 128 ** -0.5)
    elif name == 'conv3d':
        conv = CausalConv3d(384, 384, 3, 1)
        x, cache = torch.randn(1, 384, 3, 32, 32), torch.randn(1, 384, 2, 32, 32)
        run = lambda: conv(x, cache)
    elif name.startswith('dit'):
        frames = 1 if name == 'dit1560' else 2
        model = DiT(2).eval()
        lat, ctx, t = torch.randn(16, frames, 60, 104), torch.randn(1, 512, 4096), torch.tensor([999.0])
        run = lambda: model(lat, t, ctx)
    elif name == 'vae':
        model = VAEDecoder().eval()
        z = torch.randn(1, 16, 2, 16, 16)
        run = lambda: model(z)
    elif name == 'ltx2vae':
        model = LtxDecoder().eval()
        z = torch.randn(1, 128, 2, 2, 2)
        run = lambda: model(z)
    elif name == 't5':
        layers = nn.ModuleList(T5Layer() for _ in range(2)).eval()
        x = torch.randn(1, 512, 4096)

        def run():
            y = x
            for layer in layers:
                y = layer(y)
            return y
    elif name in ('vocoder', 'vocoder23'):
        if name == 'vocoder':
            model = Generator(1024, (6, 5, 2, 2, 2), (16, 15, 8, 4, 4), False, torch.tanh).eval()
        else:
            model = VocoderBWE().eval()
        for p in model.parameters():        # uniform of std 0.02, as our random weights
            nn.init.uniform_(p, -0.02 * math.sqrt(3), 0.02 * math.sqrt(3))
        mel = torch.rand(1, 2, 100, 64) * 14 - 7
        run = lambda: model(mel if name == 'vocoder23' else mel.transpose(2, 3).reshape(1, 128, -1))
    else:
        raise SystemExit('unknown item ' + name)
    run()
    t0 = time.perf_counter()
    run()
    print('time %.6f' % (time.perf_counter() - t0))


# ------------------------------------------------------------------------------------------
# Driver

def run_child(cmd, env):
    """Runs cmd, returns (stdout, peak RSS MiB) from wait4."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit('command failed (%d): %s\n%s' % (p.returncode, ' '.join(cmd), err.decode()[-2000:]))
    return out.decode(), ru.ru_maxrss / 1024.0


def first_float(pattern, text, scale=1.0):
    m = re.search(pattern, text)
    if not m:
        raise SystemExit('cannot parse %r in:\n%s' % (pattern, text))
    return float(m.group(1)) * scale


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--torch-item')
    ap.add_argument('--build', default='build')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--items', default='linear,sdpa,conv3d,dit1560,dit3120,vae,t5')
    ap.add_argument('--quant', default='bf16,fp8,nvfp4,nf4', help='our weight formats for the linear item')
    ap.add_argument('--dit-precisions', default='bf16', help='our DiT weight formats besides fp32')
    ap.add_argument('--exact-too', default='', help='items also run with VDGX_CPU_EXACT=1 (our portable '
                    'routes: scalar activations, dequantizing linears) as <item>.exact, e.g. dit1560,vae')
    ap.add_argument('--baseline', default='', help='another build directory (e.g. of main before a change): '
                    'its binaries also run every item, as <item>.base, in the same interleaving')
    args = ap.parse_args()
    if args.torch_item:
        torch_item(args.torch_item, args.threads)
        return
    th = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=th, OPENBLAS_NUM_THREADS=th, MKL_NUM_THREADS=th)
    bins = os.path.join(args.build, 'bin')
    me = [sys.executable, os.path.abspath(__file__), '--threads', th, '--torch-item']
    cpu = [os.path.join(bins, 'vdgx-bench-cpu'), '--threads', th, '--reps', '1']
    dit = [os.path.join(bins, 'vdgx-bench-dit'), '--device', 'cpu:' + th, '--precision', 'fp32',
           '--blocks', '2', '--width', '832', '--height', '480', '--iters', '1']
    ours = {
        'linear': (cpu + ['linear', '3120', '8960', '1536', 'f32'], r'time (\S+)', 1.0),
        'sdpa': (cpu + ['attention', '1', '3120', '12', '128'], r'time (\S+)', 1.0),
        'conv3d': (cpu + ['conv3d', '384', '384', '3', '32', '32'], r'time (\S+)', 1.0),
        'dit1560': (dit + ['--frames', '1'], r'forward: best (\S+) s', 1.0),
        'dit3120': (dit + ['--frames', '5'], r'forward: best (\S+) s', 1.0),
        'vae': (cpu + ['vae', '2', '16', '16'], r'time (\S+)', 1.0),
        'ltx2vae': (cpu + ['ltx2vae', '2', '2', '2'], r'time (\S+)', 1.0),
        'vocoder': (cpu + ['vocoder', '2', '100'], r'time (\S+)', 1.0),
        'vocoder23': (cpu + ['vocoder', '23', '100'], r'time (\S+)', 1.0),
        't5': ([os.path.join(bins, 'vdgx-bench-t5'), '--device', 'cpu:' + th, '--layers', '2',
                '--tokens', '512', '--wfmt', 'f32', '--reps', '1'], r'forward\s+(\S+) ms', 1e-3),
    }
    items = [i for i in args.items.split(',') if i]
    extra = {}
    if 'linear' in items:
        extra['linear'] = {'linear.' + f: (cpu + ['linear', '3120', '8960', '1536', f], r'time (\S+)', 1.0)
                           for f in args.quant.split(',') if f}
    for it in ('dit1560', 'dit3120'):
        if it in items:
            cmd = ours[it][0]
            extra[it] = {it + '.' + p: (cmd[:cmd.index('fp32')] + [p] + cmd[cmd.index('fp32') + 1:],
                                        ours[it][1], 1.0) for p in args.dit_precisions.split(',') if p}
    if args.baseline:
        bbin = os.path.join(args.baseline, 'bin')
        for it in items:
            cmd = [os.path.join(bbin, os.path.basename(c)) if c.startswith(bins) else c for c in ours[it][0]]
            extra.setdefault(it, {})[it + '.base'] = (cmd,) + ours[it][1:]
    exact_env = dict(env, VDGX_CPU_EXACT='1')
    for it in args.exact_too.split(','):
        if it in items:
            extra.setdefault(it, {})[it + '.exact'] = ours[it] + (exact_env,)
    res = {}
    load = []
    for rep in range(args.reps):
        for it in items:
            load.append(os.getloadavg()[0])
            out, rss = run_child(ours[it][0], env)
            t = first_float(ours[it][1], out, ours[it][2])
            res.setdefault(it, {'ours': [], 'torch': [], 'rss_ours': 0, 'rss_torch': 0})
            res[it]['ours'].append(t)
            res[it]['rss_ours'] = max(res[it]['rss_ours'], rss)
            out, rss = run_child(me + [it.split('.')[0]], env)
            res[it]['torch'].append(first_float(r'time (\S+)', out))
            res[it]['rss_torch'] = max(res[it]['rss_torch'], rss)
            for name, spec in extra.get(it, {}).items():
                cmd, pat, sc = spec[:3]
                out, rss = run_child(cmd, spec[3] if len(spec) > 3 else env)
                res.setdefault(name, {'ours': [], 'torch': res[it]['torch'], 'rss_ours': 0, 'rss_torch': 0})
                res[name]['ours'].append(first_float(pat, out, sc))
                res[name]['rss_ours'] = max(res[name]['rss_ours'], rss)
                res[name]['rss_torch'] = res[it]['rss_torch']
        print('repetition %d done, load average %.1f' % (rep + 1, os.getloadavg()[0]), file=sys.stderr)
        # the table so far (a long run on a busy machine still leaves figures if it is stopped)
        report(res, args, load, rep + 1, sys.stderr if rep + 1 < args.reps else sys.stdout)


def report(res, args, load, reps, out):
    print('vs_torch: %d threads each side, %d interleaved repetitions, load average %.1f-%.1f during the run'
          % (args.threads, reps, min(load), max(load)), file=out)
    print('%-14s %12s %12s %8s   %10s %10s' % ('item', 'ours (s)', 'torch (s)', 'ratio', 'ours MiB', 'torch MiB'),
          file=out)
    for it, r in res.items():
        mo, mt = statistics.median(r['ours']), statistics.median(r['torch'])
        print('%-14s %12.4f %12.4f %7.2fx   %10.0f %10.0f' % (it, mo, mt, mt / mo, r['rss_ours'], r['rss_torch']),
              file=out)
    print('(medians; ratio = torch / ours, > 1: ours faster; <item>.<fmt> = our quantized weights '
          'against the same torch fp32 run; <item>.exact = ours with VDGX_CPU_EXACT=1; <item>.base = the --baseline build)', file=out, flush=True)


if __name__ == '__main__':
    main()
