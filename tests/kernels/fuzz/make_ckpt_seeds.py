#!/usr/bin/env python3
"""make_ckpt_seeds.py OUTDIR - writes the small seed corpora of the checkpoint fuzzers:
OUTDIR/ckpt_safetensors/* and OUTDIR/ckpt_pth/* (torch.save layout: stored zip entries,
64-byte aligned data, protocol-2 pickle of an OrderedDict state dict). Standard library only."""
import json, os, struct, sys, zipfile

def safetensors(tensors, meta=None):
    header, data, off = {}, b"", 0
    if meta:
        header["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data

def pk_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b

def pk_int(v):
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)

def pk_tuple(vals):
    body = b"".join(pk_int(v) for v in vals)
    if not vals:
        return b")"
    if len(vals) <= 3:
        return body + bytes([0x84 + len(vals)])
    return b"(" + body + b"t"

def pickle_state(tensors):
    out = b"\x80\x02" + b"ccollections\nOrderedDict\nq\x00)Rq\x01("
    memo = 2
    for i, (name, stype, key, numel, offset, shape, stride) in enumerate(tensors):
        out += pk_str(name)
        if i == 0:
            out += b"ctorch._utils\n_rebuild_tensor_v2\nq\x02"
            memo = 3
        else:
            out += b"h\x02"
        out += b"((" + pk_str("storage") + ("ctorch\n%s\n" % stype).encode() + b"q" + bytes([memo])
        memo += 1
        out += pk_str(key) + pk_str("cpu") + pk_int(numel) + b"tQ"
        out += pk_int(offset) + pk_tuple(shape) + pk_tuple(stride) + b"\x89h\x00)RtR"
    out += b"u}" + pk_str("_metadata") + b"h\x00)R" + pk_str("") + b"}" + pk_str("version") + pk_int(1) + b"sssb."
    return out

def pth(path, tensors, storages, zip64=False):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
        def add(name, data):
            info = zipfile.ZipInfo("archive/" + name)
            info.compress_type = zipfile.ZIP_STORED
            # align the data to 64 bytes the way torch does, with a padding extra field
            base = z.fp.tell() + 30 + len(info.filename) + 4
            pad = (64 - base % 64) % 64
            info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
            z.writestr(info, data)
        add("data.pkl", pickle_state(tensors))
        add("byteorder", b"little")
        for key, raw in storages:
            add("data/" + key, raw)
        add("version", b"3\n")

def main():
    out = sys.argv[1]
    st, pt = os.path.join(out, "ckpt_safetensors"), os.path.join(out, "ckpt_pth")
    os.makedirs(st, exist_ok=True)
    os.makedirs(pt, exist_ok=True)
    f32 = struct.pack("<6f", 1, -2, 3.5, 0.25, 448, 0)
    with open(os.path.join(st, "two_tensors"), "wb") as f:
        f.write(safetensors([("w", "F32", [2, 3], f32), ("b", "BF16", [2], b"\x80\x3f\x00\xc0")], {"format": "pt"}))
    with open(os.path.join(st, "fp8_scaled"), "wb") as f:
        f.write(safetensors([("a.weight", "F8_E4M3", [2, 2], b"\x38\xb8\x40\x30"),
                             ("a.scale_weight", "F32", [], struct.pack("<f", 0.5))]))
    with open(os.path.join(st, "empty"), "wb") as f:
        f.write(safetensors([]))
    with open(os.path.join(st, "scalar_and_empty"), "wb") as f:
        f.write(safetensors([("s", "F16", [], b"\x00\x3c"), ("z", "F32", [0, 4], b""), ("i", "I64", [1], struct.pack("<q", -7))]))
    pth(os.path.join(pt, "state_dict"),
        [("w", "FloatStorage", "0", 6, 0, [2, 3], [3, 1]), ("b", "BFloat16Storage", "1", 2, 0, [2], [1]),
         ("view", "FloatStorage", "0", 6, 3, [3], [1])],
        [("0", f32), ("1", b"\x80\x3f\x00\xc0")])
    pth(os.path.join(pt, "half_scalar"), [("h", "HalfStorage", "0", 1, 0, [], [])], [("0", b"\x00\x3c")])

if __name__ == "__main__":
    main()
