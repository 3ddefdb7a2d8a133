#!/usr/bin/python3
"""An independent safetensors reader/writer (json + struct + torch.frombuffer), used to check
that files written by libselfrl read correctly elsewhere and vice versa.

  safetensors_reference.py write PATH     writes the reference tensors (see make_tensors)
  safetensors_reference.py check PATH     checks a file holds exactly the reference tensors
"""
import json
import struct
import sys

import torch

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}


def make_tensors():
    """Deterministic values every dtype can hold exactly (the C++ test builds the same)."""
    base = torch.arange(24, dtype=torch.float64).reshape(2, 3, 4) / 8 - 1  # multiples of 1/8
    return {
        "f64": base.clone(),
        "f32": base.to(torch.float32),
        "f16": base.to(torch.float16),
        "bf16": base.to(torch.bfloat16),
        "i64": torch.arange(-5, 5, dtype=torch.int64) * 1_000_000_007,
        "i32": torch.arange(-6, 6, dtype=torch.int32).reshape(3, 4),
        "i16": torch.arange(-300, 300, 50, dtype=torch.int16),
        "i8": torch.arange(-128, 128, 16, dtype=torch.int8),
        "u8": torch.arange(0, 256, 5, dtype=torch.uint8),
        "bool": torch.tensor([True, False, False, True]),
        "model.layers.0.self_attn.q_proj.weight": base[0].to(torch.float32),
    }


def write(path, tensors, metadata=None):
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        raw = t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        buf = bytearray(body[b:e])
        dtype = DTYPES[info["dtype"]]
        t = torch.frombuffer(buf, dtype=dtype) if buf else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"])
    return out, meta


def check(path):
    got, meta = read(path)
    want = make_tensors()
    if set(got) != set(want):
        sys.exit(f"tensor names differ: {sorted(set(got) ^ set(want))}")
    for name, w in want.items():
        g = got[name]
        if g.dtype != w.dtype or list(g.shape) != list(w.shape) or not torch.equal(g, w):
            sys.exit(f"{name}: got {g.dtype} {list(g.shape)} {g.flatten()[:4]}, want {w.dtype} {list(w.shape)}")
    if meta.get("format") != "pt":
        sys.exit(f"metadata format is {meta.get('format')!r}, transformers requires 'pt'")
    print(f"ok: {len(want)} tensors match")


if __name__ == "__main__":
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "write":
        write(path, make_tensors(), {"format": "pt"})
    elif cmd == "check":
        check(path)
    else:
        sys.exit(f"unknown command {cmd}")
