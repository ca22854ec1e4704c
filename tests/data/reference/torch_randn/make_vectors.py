#!/usr/bin/env python3
"""Writes vectors.bin: torch.randn reference draws for vdgx_torchrng's selftest.

Run with the real torch (Debian 12: apt-get install python3-torch, 1.13.1) on an x86-64 CPU with
AVX2 (torch's float normal_fill takes its AVX2 path there):  /usr/bin/python3 make_vectors.py

Format (little-endian): magic "VDGXTRN1", u32 case count, then per case
  u64 seed, u32 dtype (0 float32, 1 float64), u32 n1, u32 n2 (0: one draw),
  n1 values of randn(n1) then n2 values of a second randn(n2) from the same generator;
then u32 digest count, per digest u64 seed, u32 dtype, u32 n, u64 FNV-1a 64 of the bytes of
randn(n) (large draws that pin the last-bit behaviour without storing megabytes).
"""
import struct
import torch

SEEDS = [0, 42, 2**40 + 5]
CASES = []
for seed in SEEDS:
    for n in [1, 7, 15, 16, 17, 33] + ([1000] if seed == 42 else []):
        CASES.append((seed, torch.float32, n, 0))
    for n1, n2 in [(7, 7), (7, 33), (33, 7), (17, 17)]:
        CASES.append((seed, torch.float32, n1, n2))
    for n in [1, 7, 16, 17, 33]:
        CASES.append((seed, torch.float64, n, 0))
    CASES.append((seed, torch.float64, 7, 17))

out = bytearray(b"VDGXTRN1")
out += struct.pack("<I", len(CASES))
for seed, dtype, n1, n2 in CASES:
    g = torch.Generator("cpu").manual_seed(seed)
    out += struct.pack("<QIII", seed, 0 if dtype == torch.float32 else 1, n1, n2)
    for n in (n1, n2):
        if n:
            out += torch.randn(n, generator=g, dtype=dtype).numpy().tobytes()
DIGESTS = [(42, torch.float32, 1 << 20), (2**40 + 5, torch.float32, 1 << 20 | 5),
           (7, torch.float64, 1 << 16)]


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h


out += struct.pack("<I", len(DIGESTS))
for seed, dtype, n in DIGESTS:
    g = torch.Generator("cpu").manual_seed(seed)
    data = torch.randn(n, generator=g, dtype=dtype).numpy().tobytes()
    out += struct.pack("<QIIQ", seed, 0 if dtype == torch.float32 else 1, n, fnv1a64(data))
with open("vectors.bin", "wb") as f:
    f.write(out)
print(len(CASES), "cases,", len(out), "bytes, torch", torch.__version__)
