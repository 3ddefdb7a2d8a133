#!/usr/bin/python3
"""Hostile-input sweep of the selfrl CLI (issue 15).

Builds a tiny valid world with `selfrl demo --quick` (a small HF Llama model directory, its
sentencepiece tokenizer, JSONL data), derives from it a LoRA adapter, a checkpoint, a sharded
model and a tokenizer.json directory, then runs several hundred hostile cases against the CLI,
each under a timeout, and classifies every one:

  clean     exit status != 0 and a "selfrl: error:" message that names the offending file/key
  crash     killed by a signal
  hang      still running at the timeout
  internal  "internal error" (a C++ exception leaked past the error handling)
  unclear   failed, but without a "selfrl: error:" line or without naming the file/key
  status0   exit status 0 on bad input

A few cases are inputs that may legitimately succeed (a missing optional key, NaN weights,
which load with a warning); those pass with status 0 too ("either" / "warn" below).

Usage:  /usr/bin/python3 tests/hostile/sweep.py --selfrl build/selfrl [--only CATEGORY] [--jobs 2]
        [--quick] [--list] [--keep] [--timeout 30] [--verbose]
Exits 1 when any case is a crash, hang, internal error or status0 (unclear cases are listed
but, being a judgement, do not fail the sweep unless --strict).
Standard library only.
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time

CLASSES = ["clean", "crash", "hang", "internal", "unclear", "status0"]
FAILING = {"crash", "hang", "internal", "status0"}


class Case:
    """One hostile input. argv may use {W} (the shared world, read-only) and {D} (this case's
    own directory, made fresh and filled by setup(D))."""

    def __init__(self, category, name, argv, setup=None, names=None, expect="error", stdin=None,
                 quick=False, env=None):
        self.category = category
        self.name = name
        self.argv = argv
        self.setup = setup
        # Substrings of which at least one must appear in the output for the error to count as
        # naming the offending thing. None: no check beyond "selfrl: error:".
        self.names = names
        self.expect = expect  # "error" | "either" (status 0 allowed) | "warn" (0 with a warning)
        self.stdin = stdin
        self.quick = quick
        self.env = env


# ---------------------------------------------------------------------------------------------
# Small helpers: files, safetensors, the world.


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mode = "wb" if isinstance(data, (bytes, bytearray)) else "w"
    with open(path, mode) as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def st_parse(path):
    b = read(path)
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def st_bytes(header, data, raw_header=None):
    hb = raw_header if raw_header is not None else json.dumps(header).encode()
    if raw_header is None:
        hb += b" " * ((8 - len(hb) % 8) % 8)
    return struct.pack("<Q", len(hb)) + hb + data


def st_write(path, header, data, raw_header=None):
    write(path, st_bytes(header, data, raw_header))


def copy_model(world, d, name="m", src="base"):
    dst = os.path.join(d, name)
    shutil.copytree(os.path.join(world, src), dst)
    for f in os.listdir(dst):
        if f.startswith("events.out") or f == "metrics.jsonl":
            os.remove(os.path.join(dst, f))
    return dst


def drop(j, key):
    j.pop(key, None)


def edit_json(path, fn):
    with open(path) as f:
        j = json.load(f)
    r = fn(j)
    write(path, json.dumps(j if r is None else r))


def small_tokenizer_json():
    meta = "\u2581"
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, meta: 3, "a": 4, "b": 5, "c": 6, "ab": 7, meta + "ab": 8,
             "bc": 9, "<0xC9>": 10, "<0x91>": 11, "z": 12, "h": 13, "i": 14}
    return {
        "added_tokens": [
            {"id": 0, "content": "<unk>", "special": True, "normalized": False},
            {"id": 1, "content": "<s>", "special": True, "normalized": False},
            {"id": 2, "content": "</s>", "special": True, "normalized": False},
        ],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": meta}, {"type": "Replace", "pattern": {"String": " "}, "content": meta}]},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": meta}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True,
                  "vocab": vocab, "merges": ["b c", "a b", meta + " ab"]},
    }


def run(selfrl, args, cwd=None, timeout=120):
    p = subprocess.run([selfrl] + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    if p.returncode != 0:
        sys.exit("sweep: building the world failed: selfrl %s\n%s" % (" ".join(args), p.stdout.decode(errors="replace")))
    return p.stdout.decode(errors="replace")


def build_world(selfrl, w):
    run(selfrl, ["demo", "--quick", "--quiet", "--out", w, "--threads", "1"])
    for d in os.listdir(w):
        if d not in ("base", "data"):
            p = os.path.join(w, d)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    for f in os.listdir(os.path.join(w, "base")):
        if f.startswith("events.out") or f == "metrics.jsonl":
            os.remove(os.path.join(w, "base", f))
    write(os.path.join(w, "prompts.jsonl"), '{"prompt": "Q: 1+2 ="}\n{"prompt": "Q: 30+4 ="}\n')
    write(os.path.join(w, "ids.jsonl"), '{"input_ids": [1, 5, 6, 7]}\n')
    write(os.path.join(w, "texts.jsonl"), '{"text": "Q: 1+2 ="}\n')
    # A LoRA adapter and a checkpoint: one tiny GRPO run each.
    common = "threads: 1\nreport_to_tensorboard: false\nnum_generations: 2\nper_device_train_batch_size: 4\n" \
             "max_completion_length: 4\nreward_funcs: [consensus]\ndata:\n  train: data/unlabelled.jsonl\n" \
             "model: base\ntrainer: grpo\n"
    write(os.path.join(w, "lora.yaml"), common + "output_dir: lora_run\nmax_steps: 1\nlora:\n  r: 4\n"
          "  target_modules: [q_proj, v_proj]\n")
    write(os.path.join(w, "ckpt.yaml"), common + "output_dir: ckpt_run\nmax_steps: 2\nsave_steps: 1\n")
    write(os.path.join(w, "valid.yaml"), common + "output_dir: out\nmax_steps: 1\n")
    run(selfrl, ["train", "lora.yaml", "--no-progress"], cwd=w)
    run(selfrl, ["train", "ckpt.yaml", "--no-progress"], cwd=w)
    os.rename(os.path.join(w, "lora_run", "final"), os.path.join(w, "adapter"))
    # A sharded copy of the base model.
    header, data = st_parse(os.path.join(w, "base", "model.safetensors"))
    names = [k for k in header if k != "__metadata__"]
    sh = os.path.join(w, "sharded")
    shutil.copytree(os.path.join(w, "base"), sh)
    os.remove(os.path.join(sh, "model.safetensors"))
    weight_map = {}
    for i, part in enumerate([names[: len(names) // 2], names[len(names) // 2:]]):
        fname = "model-%05d-of-00002.safetensors" % (i + 1)
        h, chunks, off = {"__metadata__": {"format": "pt"}}, [], 0
        for k in part:
            a, b = header[k]["data_offsets"]
            h[k] = dict(header[k], data_offsets=[off, off + b - a])
            chunks.append(data[a:b])
            off += b - a
            weight_map[k] = fname
        st_write(os.path.join(sh, fname), h, b"".join(chunks))
    write(os.path.join(sh, "model.safetensors.index.json"),
          json.dumps({"metadata": {"total_size": len(data)}, "weight_map": weight_map}))
    run(selfrl, ["inspect", sh])
    # A tokenizer.json directory.
    write(os.path.join(w, "tokj", "tokenizer.json"), json.dumps(small_tokenizer_json()))
    write(os.path.join(w, "tokj", "tokenizer_config.json"),
          json.dumps({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}))
    run(selfrl, ["tokenize", "--tokenizer", os.path.join(w, "tokj"), "--text", "abc"])


# ---------------------------------------------------------------------------------------------
# The cases.

GEN = ["generate", "--model", "{D}/m", "--in", "{W}/prompts.jsonl", "--max-new-tokens", "2", "--threads", "1"]
INSPECT_FILE = ["inspect", "{D}/m/model.safetensors"]


def safetensors_cases(W):
    cases = []
    header, data = st_parse(os.path.join(W, "base", "model.safetensors"))
    full = read(os.path.join(W, "base", "model.safetensors"))
    hlen = struct.unpack("<Q", full[:8])[0]
    emb = "model.embed_tokens.weight"

    def raw(bytes_):
        def s(D):
            copy_model(W, D)
            write(D + "/m/model.safetensors", bytes_)
        return s

    def hdr(fn, data_=None):
        def s(D):
            copy_model(W, D)
            h = json.loads(json.dumps(header))
            r = fn(h)
            st_write(D + "/m/model.safetensors", h if r is None else r, data if data_ is None else data_)
        return s

    def add(name, setup, cmds=("inspect_file", "generate"), names=("model.safetensors",), expect="error", quick=False):
        # A file that is valid as safetensors but does not fit the model (a missing or transposed
        # tensor) is fine for `inspect FILE`; the model loaders must refuse it.
        file_ok = name in ("shape-transposed", "missing-tensor", "shape-wrong-for-config")
        for c in cmds:
            exp = "either" if (file_ok and c == "inspect_file") else expect
            argv = {"inspect_file": INSPECT_FILE, "inspect_dir": ["inspect", "{D}/m"], "generate": GEN,
                    "logprobs": ["logprobs", "--model", "{D}/m", "--in", "{W}/ids.jsonl"]}[c]
            cases.append(Case("safetensors", name + "/" + c, argv, setup, list(names) + ["missing tensors", "{D}/m:"],
                              exp, quick=quick))

    for cut in [0, 3, 8, 12, 8 + hlen // 2, 8 + hlen - 1, 8 + hlen, 8 + hlen + 100, len(full) - 1]:
        add("truncated-at-%d" % cut, raw(full[:cut]), quick=(cut in (0, 8 + hlen // 2, len(full) - 1)))
    for n in [0, 1, 2 ** 63, 2 ** 64 - 1, len(full), hlen + 1, 100 * 1000 * 1000 + 1]:
        add("header-length-%d" % n, raw(struct.pack("<Q", n) + full[8:]), quick=(n == 2 ** 64 - 1))
    for label, hb in [("open-brace", b"{"), ("array", b"[1,2]"), ("null", b"null"), ("string", b'"x"'),
                      ("invalid-utf8", b'{"\xff\xfe": 1}'), ("nul-bytes", b"\x00" * 16), ("number", b"12345678"),
                      ("trailing-garbage", json.dumps(header).encode() + b"}}"),
                      ("entry-not-object", b'{"model.norm.weight": 5}')]:
        add("header-json-" + label, raw(st_bytes(None, data, raw_header=hb)), quick=(label == "open-brace"))
    for dt in ["F99", "", "f32", 7, None, "BOOL", "I8", "U8", "F8_E4M3", "C64"]:
        add("dtype-%s" % dt, hdr(lambda h, dt=dt: h[emb].update(dtype=dt)), quick=(dt == "F99"))
    for label, shape in [("negative", [-43, 32]), ("string", ["43", 32]), ("float", [43.5, 32]),
                         ("not-list", 43), ("empty", []), ("huge", [2 ** 40, 2 ** 40]),
                         ("overflow", [2 ** 32, 2 ** 32, 2 ** 32]), ("u64max", [2 ** 64 - 1]),
                         ("beyond-u64", [2 ** 70]), ("wrong-for-config", [44, 32]), ("transposed", [32, 43]),
                         ("zero", [0, 32])]:
        add("shape-" + label, hdr(lambda h, s=shape: h[emb].update(shape=s)), quick=(label == "overflow"))
    a, b = header[emb]["data_offsets"]
    for label, offs in [("reversed", [b, a]), ("beyond-file", [a, len(data) + 4]), ("negative", [-4, b]),
                        ("three", [a, b, b]), ("strings", ["0", str(b)]), ("not-list", 5),
                        ("huge", [2 ** 63, 2 ** 63 + b]), ("u64-overflow", [2 ** 64 - 8, 2 ** 64 + b]),
                        ("float", [0.0, float(b)]), ("size-mismatch", [a, b - 4])]:
        add("offsets-" + label, hdr(lambda h, o=offs: h[emb].update(data_offsets=o)), quick=(label == "reversed"))
    # Unused bytes before the first tensor: the reference implementation refuses them, readers
    # that only follow the offsets load the right values. Either is accepted.

    def overlap(h):
        h["model.norm.weight"]["data_offsets"] = list(h["model.layers.0.post_attention_layernorm.weight"]["data_offsets"])
    add("offsets-overlapping", hdr(overlap), quick=True)

    def gap(h):
        for k, v in h.items():
            if k != "__metadata__":
                v["data_offsets"] = [v["data_offsets"][0] + 64, v["data_offsets"][1] + 64]
    add("offsets-gap-at-start", hdr(gap, data + b"\0" * 64), expect="either")
    add("missing-tensor", hdr(lambda h: drop(h, "model.norm.weight")), names=("model.norm.weight",))
    add("metadata-list", hdr(lambda h: h.update(__metadata__=[1, 2])))
    add("metadata-nonstring", hdr(lambda h: h.update(__metadata__={"format": 5})), expect="either")
    add("metadata-tensor-like", hdr(lambda h: h.update(__metadata__={"dtype": "F32", "shape": [1],
                                                                       "data_offsets": [0, 4]})), expect="either")
    add("empty-name", hdr(lambda h: h.update({"": h["model.norm.weight"]})), expect="either")

    def dup(D):
        copy_model(W, D)
        js = json.dumps(header)
        extra = '"model.norm.weight": ' + json.dumps(header["model.norm.weight"])
        st_write(D + "/m/model.safetensors", None, data, raw_header=(js[:-1] + ", " + extra + "}").encode())
    add("duplicate-name", dup, names=("model.norm.weight",), quick=True)

    def many(D):  # 200,000 tiny entries: must be parsed fast and refused or listed, never hang
        copy_model(W, D)
        parts = ['"t%d": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}' % i for i in range(200000)]
        st_write(D + "/m/model.safetensors", None, b"", raw_header=("{" + ",".join(parts) + "}").encode())
    add("200k-entries", many, cmds=("inspect_file",), expect="either")
    add("200k-entries-model", many, cmds=("generate",))

    def deep(D):
        copy_model(W, D)
        st_write(D + "/m/model.safetensors", None, data,
                 raw_header=(b'{"__metadata__": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}"))
    add("deep-nesting", deep)

    def nan(D):
        copy_model(W, D)
        a, b = header["model.norm.weight"]["data_offsets"]
        d = bytearray(data)
        d[a:a + 8] = struct.pack("<ff", float("nan"), float("inf"))
        st_write(D + "/m/model.safetensors", header, bytes(d))
    add("nan-weights", nan, cmds=("generate", "logprobs"), names=("model.norm.weight",), expect="warn")

    def all_nan(D):
        copy_model(W, D)
        st_write(D + "/m/model.safetensors", header, struct.pack("<f", float("nan")) * (len(data) // 4))
    add("all-nan-weights", all_nan, cmds=("generate",), names=("model.",), expect="warn")
    add("empty-object-header", raw(st_bytes({}, b"")), cmds=("inspect_file", "generate"), expect="either")
    add("bf16-as-f32", hdr(lambda h: [v.update(dtype="BF16", shape=[v["shape"][0], v["shape"][-1] * 2]
                                             if len(v["shape"]) == 2 else [v["shape"][0] * 2])
                                     for k, v in h.items() if k != "__metadata__"] and None),
        cmds=("generate",), names=("model.", "config"))
    return cases


def shard_cases(W):
    cases = []
    idx = "model.safetensors.index.json"

    def setup(fn):
        def s(D):
            m = copy_model(W, D, src="sharded")
            fn(m)
        return s

    def index(fn):
        return setup(lambda m: edit_json(m + "/" + idx, fn))

    def add(name, s, names=(idx,), expect="error", quick=False):
        for argv in (["inspect", "{D}/m"], GEN):
            cases.append(Case("shards", name + "/" + argv[0], argv, s, list(names), expect, quick=quick))

    add("missing-shard", setup(lambda m: os.remove(m + "/model-00002-of-00002.safetensors")),
        names=("model-00002-of-00002.safetensors",), quick=True)
    add("dotdot-path", index(lambda j: j["weight_map"].update({k: "../../etc/passwd" for k in list(j["weight_map"])[:1]})),
        names=("../",), quick=True)
    add("absolute-path", index(lambda j: j["weight_map"].update({k: "/etc/passwd" for k in list(j["weight_map"])[:1]})),
        names=("/etc/passwd",))
    add("subdir-path", index(lambda j: j["weight_map"].update({k: "sub/x.safetensors" for k in list(j["weight_map"])[:1]})),
        names=("sub/x.safetensors",))
    add("shard-is-directory", index(lambda j: j["weight_map"].update({k: "." for k in list(j["weight_map"])[:1]})),
        names=(idx, "directory"))
    add("tensor-not-in-shard", index(lambda j: j["weight_map"].update(
        {"model.norm.weight": "model-00001-of-00002.safetensors"})), names=("model.norm.weight",))
    add("tensor-in-two-shards", setup(lambda m: shutil.copy(m + "/model-00002-of-00002.safetensors",
                                                            m + "/model-00001-of-00002.safetensors")),
        names=("model.", "safetensors"))

    def dup_key(m):
        t = open(m + "/" + idx).read()
        t = t.replace('"weight_map": {', '"weight_map": {"model.norm.weight": "model-00001-of-00002.safetensors", ', 1)
        write(m + "/" + idx, t)
    add("duplicate-key-in-index", setup(dup_key), names=(idx, "model.norm.weight"), expect="either")
    add("weight-map-missing", index(lambda j: drop(j, "weight_map")))
    add("weight-map-list", index(lambda j: j.update(weight_map=[1])))
    add("weight-map-value-number", index(lambda j: j["weight_map"].update({"model.norm.weight": 5})),
        names=(idx, "model.norm.weight"))
    add("weight-map-empty", index(lambda j: j.update(weight_map={})))
    add("index-bad-json", setup(lambda m: write(m + "/" + idx, '{"weight_map": {')), quick=True)
    add("index-empty", setup(lambda m: write(m + "/" + idx, "")))
    add("index-array", setup(lambda m: write(m + "/" + idx, "[]")))
    add("index-names-unknown-tensor", index(lambda j: j["weight_map"].update({"x.weight": "model-00001-of-00002.safetensors"})),
        names=("x.weight",), expect="either")
    add("shard-truncated", setup(lambda m: write(m + "/model-00001-of-00002.safetensors",
                                                  read(m + "/model-00001-of-00002.safetensors")[:100])),
        names=("model-00001-of-00002.safetensors",))
    return cases


CONFIG_KEYS = {
    # key: (missing allowed, "int" | "float" | "bool" | "str" | "list")
    "architectures": (True, "list"), "attention_bias": (True, "bool"), "bos_token_id": (True, "int"),
    "eos_token_id": (True, "int"), "head_dim": (True, "int"), "hidden_act": (True, "str"),
    "hidden_size": (False, "int"), "intermediate_size": (False, "int"), "max_position_embeddings": (True, "int"),
    "mlp_bias": (True, "bool"), "model_type": (True, "str"), "num_attention_heads": (False, "int"),
    "num_hidden_layers": (False, "int"), "num_key_value_heads": (True, "int"), "rms_norm_eps": (True, "float"),
    "rope_theta": (True, "float"), "tie_word_embeddings": (True, "bool"), "torch_dtype": (True, "str"),
    "vocab_size": (False, "int"),
}


def config_cases(W):
    cases = []

    def cfg(fn):
        def s(D):
            m = copy_model(W, D)
            edit_json(m + "/config.json", fn)
        return s

    def add(name, s, names=None, expect="error", quick=False):
        cases.append(Case("config", name, GEN, s, (names or []) + ["config.json"], expect, quick=quick))

    for key, (optional, kind) in CONFIG_KEYS.items():
        n = [key]
        add(key + "/missing", cfg(lambda j, k=key: drop(j, k)), n, "either" if optional else "error",
            quick=(key == "hidden_size"))
        add(key + "/null", cfg(lambda j, k=key: j.update({k: None})), n, "either" if optional else "error")
        if kind != "str":
            add(key + "/string", cfg(lambda j, k=key: j.update({k: "abc"})), n, quick=(key == "vocab_size"))
        add(key + "/object", cfg(lambda j, k=key: j.update({k: {"a": 1}})), n)
        if kind in ("int", "float"):
            add(key + "/negative", cfg(lambda j, k=key: j.update({k: -1})), n,
                "either" if key in ("bos_token_id", "eos_token_id") else "error")
            add(key + "/zero", cfg(lambda j, k=key: j.update({k: 0})), n,
                "either" if key in ("bos_token_id", "eos_token_id") else "error", quick=(key == "num_attention_heads"))
            add(key + "/huge", cfg(lambda j, k=key: j.update({k: 2 ** 64 - 1})), n,
                "either" if key == "rope_theta" else "error", quick=(key == "hidden_size"))
            add(key + "/1e300", cfg(lambda j, k=key: j.update({k: 1e300})), n,
                "either" if key == "rope_theta" else "error")
            add(key + "/bool", cfg(lambda j, k=key: j.update({k: True})), n)
        if kind == "int":
            add(key + "/fraction", cfg(lambda j, k=key: j.update({k: 3.5})), n)
            add(key + "/2^31", cfg(lambda j, k=key: j.update({k: 2 ** 31})), n,
                "either" if key == "max_position_embeddings" else "error")
        if kind == "float":
            add(key + "/nan-string", cfg(lambda j, k=key: j.update({k: "NaN"})), n)
    # Values that are individually fine but do not fit together.
    add("heads-do-not-divide-hidden", cfg(lambda j: j.update(num_attention_heads=3) or drop(j, "head_dim")),
        ["num_attention_heads", "hidden_size"])
    add("kv-heads-do-not-divide-heads", cfg(lambda j: j.update(num_key_value_heads=3)), ["num_key_value_heads"])
    add("kv-heads-more-than-heads", cfg(lambda j: j.update(num_key_value_heads=4)), ["num_key_value_heads"])
    add("head-dim-mismatch", cfg(lambda j: j.update(head_dim=8)), ["head_dim", "q_proj"])
    add("head-dim-odd", cfg(lambda j: j.update(head_dim=15)), ["head_dim", "q_proj"])
    add("vocab-smaller-than-weights", cfg(lambda j: j.update(vocab_size=40)), ["vocab_size", "embed_tokens"])
    add("eos-out-of-vocab", cfg(lambda j: j.update(eos_token_id=100000)), ["eos_token_id"], "either")
    add("eos-list-with-string", cfg(lambda j: j.update(eos_token_id=[2, "x"])), ["eos_token_id"])
    add("max-positions-1", cfg(lambda j: j.update(max_position_embeddings=1)), ["max_position_embeddings"], "either")
    for arch in [["GPT2LMHeadModel"], "LlamaForCausalLM", [], [123], ["MixtralForCausalLM"]]:
        add("architectures-%s" % json.dumps(arch), cfg(lambda j, a=arch: j.update(architectures=a)), ["architectures"],
            "either" if arch in ([],) else "error")
    for mt in ["gpt2", "bert", "", "mistral"]:
        add("model_type-" + (mt or "empty"), cfg(lambda j, t=mt: j.update(model_type=t)), ["model_type"],
            "either" if mt in ("mistral", "") else "error")
    add("hidden_act-gelu", cfg(lambda j: j.update(hidden_act="gelu")), ["hidden_act"])
    add("torch_dtype-int8", cfg(lambda j: j.update(torch_dtype="int8")), ["torch_dtype"], "either")
    add("rope_scaling-unknown", cfg(lambda j: j.update(rope_scaling={"type": "bogus", "factor": 2})), ["rope_scaling"])
    add("rope_scaling-string", cfg(lambda j: j.update(rope_scaling="yarn")), ["rope_scaling"])
    add("sliding-window-set", cfg(lambda j: j.update(sliding_window=4, use_sliding_window=True)), ["sliding_window"],
        "either")
    for label, text in [("bad-json", "{"), ("empty", ""), ("array", "[]"), ("nan-literal", '{"hidden_size": NaN}'),
                        ("invalid-utf8", b'{"model_type": "\xff"}'), ("deep", "[" * 100000 + "]" * 100000)]:
        add("file-" + label, lambda D, t=text: (copy_model(W, D), write(D + "/m/config.json", t)),
            quick=(label == "bad-json"))
    add("file-missing", lambda D: (copy_model(W, D), os.remove(D + "/m/config.json")))
    return cases


def tokenizer_cases(W):
    cases = []
    TOK = ["tokenize", "--tokenizer", "{D}/m", "--text", "Q: 1+2 ="]
    TOKC = TOK + ["--chat"]
    spm = read(os.path.join(W, "base", "tokenizer.model"))

    def spm_case(name, bytes_, quick=False):
        def s(D):
            copy_model(W, D)
            write(D + "/m/tokenizer.model", bytes_)
        for argv in (TOK, GEN):
            cases.append(Case("tokenizer", "tokenizer.model-" + name + "/" + argv[0], argv, s, ["tokenizer.model"],
                              quick=quick))

    spm_case("empty", b"", quick=True)
    for frac in (1, 10, 50, 90, 99):
        spm_case("truncated-%d%%" % frac, spm[: len(spm) * frac // 100])
    spm_case("random", bytes((i * 7919 + 13) % 256 for i in range(5000)), quick=True)
    spm_case("json", b'{"model": {}}')
    spm_case("huge-varint", b"\x0a" + b"\xff" * 10 + b"\x01")
    spm_case("length-beyond-file", b"\x0a\xff\xff\xff\xff\x07abc")
    flipped = bytearray(spm)
    for i in range(3, len(flipped), 997):
        flipped[i] ^= 0x5A
    spm_case("bit-flipped", bytes(flipped))

    # tokenizer.json variants (the tokj directory of the world).
    def tj(name, fn, names=("tokenizer.json",), expect="error", quick=False, text=False):
        def s(D):
            shutil.copytree(os.path.join(W, "tokj"), D + "/m")
            if text:
                write(D + "/m/tokenizer.json", fn)
            else:
                j = small_tokenizer_json()
                r = fn(j)
                write(D + "/m/tokenizer.json", json.dumps(j if r is None else r))
        cases.append(Case("tokenizer", "tokenizer.json-" + name, TOK, s, list(names), expect, quick=quick))

    tj("bad-json", '{"model": ', text=True, quick=True)
    tj("empty", "", text=True)
    tj("array", "[]", text=True)
    tj("empty-object", lambda j: {})
    tj("model-unigram", lambda j: j["model"].update(type="Unigram"))
    tj("model-wordpiece", lambda j: j["model"].update(type="WordPiece"))
    tj("model-type-number", lambda j: j["model"].update(type=5))
    tj("vocab-list", lambda j: j["model"].update(vocab=["a", "b"]))
    tj("vocab-id-string", lambda j: j["model"]["vocab"].update(a="4"))
    tj("vocab-id-negative", lambda j: j["model"]["vocab"].update(a=-4))
    tj("vocab-id-huge", lambda j: j["model"]["vocab"].update(a=2 ** 40))
    tj("vocab-id-float", lambda j: j["model"]["vocab"].update(a=4.5))
    tj("vocab-duplicate-ids", lambda j: j["model"]["vocab"].update(a=5), expect="either")
    tj("merges-unknown-token", lambda j: j["model"].update(merges=["q r"]))
    tj("merges-one-part", lambda j: j["model"].update(merges=["ab"]))
    tj("merges-number", lambda j: j["model"].update(merges=[5]))
    tj("merges-pairs-wrong-arity", lambda j: j["model"].update(merges=[["a", "b", "c"]]))
    tj("unk-not-in-vocab", lambda j: j["model"].update(unk_token="<nope>"))
    tj("added-token-id-huge", lambda j: j["added_tokens"].append({"id": 10 ** 12, "content": "<x>", "special": True}))
    tj("added-token-id-negative", lambda j: j["added_tokens"].append({"id": -1, "content": "<x>", "special": True}))
    tj("added-token-content-number", lambda j: j["added_tokens"].append({"id": 20, "content": 5, "special": True}))
    tj("added-token-empty-content", lambda j: j["added_tokens"].append({"id": 20, "content": "", "special": True}),
       expect="either")
    tj("added-tokens-object", lambda j: j.update(added_tokens={"a": 1}))
    tj("normalizer-unknown", lambda j: j.update(normalizer={"type": "Bogus"}))
    tj("normalizer-replace-bad-regex", lambda j: j.update(normalizer={"type": "Replace", "pattern": {"Regex": "("},
                                                                     "content": "x"}))
    tj("pretokenizer-split-bad-regex", lambda j: j.update(pre_tokenizer={"type": "Split", "pattern": {"Regex": "[a-"},
                                                                        "behavior": "Isolated", "invert": False}))
    tj("pretokenizer-unknown", lambda j: j.update(pre_tokenizer={"type": "Bogus"}))
    tj("decoder-unknown", lambda j: j.update(decoder={"type": "Bogus"}))
    tj("post-processor-template-unknown-token", lambda j: j.update(post_processor={
        "type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<zz>", "type_id": 0}},
                                                 {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [], "special_tokens": {}}))
    tj("post-processor-ids-out-of-range", lambda j: j.update(post_processor={
        "type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                 {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [10 ** 9], "tokens": ["<s>"]}}}))
    tj("byte-fallback-no-byte-tokens", lambda j: [j["model"]["vocab"].pop(k) for k in ("<0xC9>", "<0x91>")] and None,
       expect="either")

    # tokenizer_config.json and chat templates (over the sentencepiece model of base).
    def tc(name, content, argv=TOKC, names=("tokenizer_config.json",), expect="error", quick=False):
        def s(D):
            copy_model(W, D)
            if isinstance(content, (str, bytes)):
                write(D + "/m/tokenizer_config.json", content)
            else:
                with open(D + "/m/tokenizer_config.json") as f:
                    j = json.load(f)
                j.update(content)
                write(D + "/m/tokenizer_config.json", json.dumps(j))
        cases.append(Case("tokenizer", "tokenizer_config-" + name, argv, s, list(names), expect, quick=quick))

    tc("bad-json", "{", argv=TOK, quick=True)
    tc("array", "[]", argv=TOK)
    tc("invalid-utf8", b'{"bos_token": "\xff"}', argv=TOK)
    for label, tmpl in [("unclosed-for", "{% for m in messages %}{{ m.content }}"),
                        ("unclosed-expr", "{{ messages[0]"), ("unknown-tag", "{% bogus %}"),
                        ("unknown-filter", "{{ messages | bogusfilter }}"),
                        ("raise-exception", "{{ raise_exception('no system role') }}"),
                        ("undefined-call", "{{ nothere() }}"),
                        ("recursive-macro", "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}"),
                        ("huge-range", "{% for i in range(1000000000) %}x{% endfor %}"),
                        ("string-bomb", "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
                         "{% endfor %}{{ ns.s }}"),
                        ("deep-parens", "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"),
                        ("division-by-zero", "{{ 1 / 0 }}"), ("modulo-zero", "{{ 1 % 0 }}"),
                        ("index-out-of-range", "{{ messages[99].content }}"),
                        ("attribute-of-number", "{{ (5).content.x }}"),
                        ("bad-slice", "{{ messages[::0] }}"),
                        ("int-overflow", "{{ 9223372036854775807 + 1 }}"),
                        ("int-literal-too-big", "{{ 99999999999999999999999 }}"),
                        ("nul-byte", "{{ messages }}\u0000{%")]:
        tc("chat_template-" + label, {"chat_template": tmpl}, quick=(label in ("unclosed-for", "huge-range")))
    tc("chat_template-number", {"chat_template": 5})
    tc("chat_template-list-bad", {"chat_template": [{"name": 1}]})
    tc("chat_template-list-no-default", {"chat_template": [{"name": "tool_use", "template": "x"}]}, expect="either")
    tc("bos-token-not-in-vocab", {"bos_token": "<nope>"}, argv=TOK, names=("bos_token", "<nope>"), expect="either")
    tc("bos-token-number", {"bos_token": 5}, argv=TOK, names=("bos_token",))
    tc("bos-token-dict-no-content", {"bos_token": {"x": 1}}, argv=TOK, names=("bos_token",))
    tc("eos-token-list", {"eos_token": ["</s>"]}, argv=TOK, names=("eos_token",))
    tc("added-tokens-decoder-huge-id", {"added_tokens_decoder": {"99999999999": {"content": "<x>", "special": True}}},
       argv=TOK, names=("added_tokens_decoder", "99999999999"), expect="either")
    tc("added-tokens-decoder-bad-key", {"added_tokens_decoder": {"abc": {"content": "<x>"}}}, argv=TOK,
       names=("added_tokens_decoder", "abc"), expect="either")
    tc("add-bos-string", {"add_bos_token": "yes"}, argv=TOK, names=("add_bos_token",))
    tc("model-max-length-negative", {"model_max_length": -5}, argv=TOK, names=("model_max_length",), expect="either")
    for label, ids in [("id-huge", [10 ** 12]), ("id-negative", [-1]), ("id-float", [1.5]), ("id-string", ["a"]),
                       ("beyond-vocab", [43, 1000]), ("not-list", 5)]:
        cases.append(Case("tokenizer", "decode-" + label, ["tokenize", "--tokenizer", "{W}/base", "--decode", "--in",
                                                           "{D}/ids.jsonl"],
                          lambda D, i=ids: write(D + "/ids.jsonl", json.dumps({"input_ids": i}) + "\n"),
                          ["ids.jsonl:1"], quick=(label == "id-huge")))
    cases.append(Case("tokenizer", "no-tokenizer-files", TOK, lambda D: (copy_model(W, D), os.remove(D + "/m/tokenizer.model")),
                      ["tokenizer"]))
    cases.append(Case("tokenizer", "tokenizer-dir-missing", ["tokenize", "--tokenizer", "{D}/nope", "--text", "x"],
                      None, ["{D}/nope"]))
    cases.append(Case("tokenizer", "chat-format-unknown", ["tokenize", "--tokenizer", "{W}/base", "--text", "x", "--chat",
                                                           "--chat-format", "bogus"], None, ["chat-format", "bogus"]))
    return cases


def generation_config_cases(W):
    cases = []
    for label, content in [("bad-json", "{"), ("array", "[]"), ("eos-string", {"eos_token_id": "x"}),
                           ("eos-huge", {"eos_token_id": 2 ** 64}), ("eos-negative", {"eos_token_id": -3}),
                           ("eos-list-mixed", {"eos_token_id": [2, None]}), ("temperature-string", {"temperature": "hot"}),
                           ("max-length-negative", {"max_length": -1}), ("empty", ""),
                           ("invalid-utf8", b'{"x": "\xff"}'), ("top-p-object", {"top_p": {}})]:
        def s(D, c=content):
            copy_model(W, D)
            write(D + "/m/generation_config.json", c if isinstance(c, (str, bytes)) else json.dumps(c))
        exp = "either" if label in ("temperature-string", "max-length-negative", "top-p-object") else "error"
        cases.append(Case("generation_config", label, GEN, s, ["generation_config.json"], exp,
                          quick=(label == "bad-json")))
    return cases


def recipe_cases(W):
    cases = []
    valid = open(os.path.join(W, "valid.yaml")).read()

    def rc(name, text, names=("r.yaml",), check=True, expect="error", extra=None, quick=False, argv_extra=()):
        def s(D):
            for k in ("base", "data"):
                os.symlink(os.path.join(W, k), os.path.join(D, k))
            write(D + "/r.yaml", text)
            for fname, t in (extra or {}).items():
                write(os.path.join(D, fname), t)
        argv = ["train", "{D}/r.yaml"] + list(argv_extra) + (["--check"] if check else ["--no-progress"])
        cases.append(Case("recipe", name, argv, s, list(names) + ["r.yaml:"], expect, quick=quick))

    rc("empty-file", "", quick=True)
    rc("only-comment", "# nothing\n")
    rc("binary", bytes(range(256)) * 4, quick=True)
    rc("nul-in-middle", valid.encode() + b"\x00\x01junk: 1\n")
    rc("invalid-utf8", valid.encode() + b"output_dir: \xff\xfe\n")
    rc("top-level-list", "- a\n- b\n")
    rc("top-level-scalar", "hello\n")
    rc("tab-indent", valid + "data:\n\ttrain: x\n")
    rc("unclosed-bracket", valid + "stop_token_ids: [1, 2\n")
    rc("unclosed-quote", valid + 'output_dir: "abc\n')
    rc("duplicate-key", valid + "seed: 1\nseed: 2\n", names=("seed",))
    rc("unknown-key", valid + "learning_rat: 0.1\n", names=("learning_rat",), quick=True)
    rc("unknown-nested-key", valid + "lora:\n  rank: 4\n", names=("lora.rank", "rank"))
    rc("unknown-top-section", valid + "bogus:\n  x: 1\n", names=("bogus",))
    rc("no-trainer-or-loop", valid.replace("trainer: grpo\n", ""), names=("trainer", "loop"))
    rc("trainer-and-loop", valid + "loop: star\n", names=("trainer", "loop"))
    rc("trainer-unknown", valid.replace("trainer: grpo", "trainer: ppo"), names=("trainer", "ppo"))
    rc("loop-unknown", valid.replace("trainer: grpo", "loop: bogus"), names=("loop", "bogus"))
    for key, val in [("seed", "abc"), ("seed", "-1"), ("seed", "1.5"), ("seed", "99999999999999999999999"),
                     ("seed", "[1]"), ("seed", "{a: 1}"), ("learning_rate", "abc"), ("learning_rate", "-1"),
                     ("learning_rate", "0"), ("learning_rate", ".inf"), ("learning_rate", ".nan"),
                     ("learning_rate", "1e999"), ("top_p", "1.5"), ("top_p", "0"), ("temperature", "0"),
                     ("temperature", "-1"), ("num_generations", "1"), ("num_generations", "0"),
                     ("max_completion_length", "0"), ("per_device_train_batch_size", "0"),
                     ("per_device_train_batch_size", "3"), ("gradient_accumulation_steps", "0"),
                     ("threads", "-1"), ("threads", "100000"), ("dtype", "int8"), ("device", "tpu"),
                     ("device", "cuda:-1"), ("lr_scheduler_type", "bogus"), ("warmup_ratio", "2"),
                     ("adam_beta1", "1"), ("adam_beta2", "-0.1"), ("report_to_tensorboard", "maybe"),
                     ("report_to_tensorboard", "2"), ("reward_funcs", "consensus"), ("reward_funcs", "[bogus]"),
                     ("reward_funcs", "[]"), ("reward_weights", "[1, 2]"), ("reward_weights", "[abc]"),
                     ("stop_token_ids", "[-1]"), ("stop_token_ids", "[1.5]"), ("stop_token_ids", "5"),
                     ("answer_extractor", "regex:("), ("answer_extractor", "bogus"), ("loss_type", "bogus"),
                     ("beta", "-1"), ("epsilon", "0"), ("save_steps", "-1"), ("ddp_timeout", "0"),
                     ("resume_from_checkpoint", "nope/checkpoint-1"), ("output_dir", "''"),
                     ("output_dir", "/dev/null"), ("output_dir", "/proc/version"), ("model", "nope"),
                     ("model", "''"), ("model", "/dev/zero"), ("model", "data/seed.jsonl"),
                     ("logging_steps", "0"), ("min_p", "2"), ("top_k", "-1"), ("max_steps", "-5"),
                     ("num_train_epochs", "0"), ("generation_batch_size", "0"), ("bf16", "yes please"),
                     ("lora", "5"), ("lora", "[1]"), ("data", "abc"), ("data", "[a]")]:
        text = "\n".join(l for l in valid.splitlines() if not l.startswith(key + ":")) + "\n%s: %s\n" % (key, val)
        if key in ("data",):
            text = valid.replace("data:\n  train: data/unlabelled.jsonl\n", "") + "data: %s\n" % val
        # per_device_train_batch_size=3 with num_generations 2 divides under an even world size,
        # so only a run (world size known) can refuse it.
        runs = key in ("output_dir", "resume_from_checkpoint", "device") or (key == "model" and val != "nope") or \
            (key, val) == ("per_device_train_batch_size", "3")
        lenient = (key, val) in (("reward_funcs", "consensus"), ("stop_token_ids", "5"))  # a scalar as a 1-list
        rc("%s=%s" % (key, val), text, names=(key,), check=not runs, expect="either" if lenient else "error",
           quick=((key, val) in (("seed", "abc"), ("learning_rate", ".nan"), ("output_dir", "/dev/null"))))
    rc("lora-r-negative", valid + "lora:\n  r: -4\n", names=("lora.r",))
    rc("lora-target-unknown", valid + "lora:\n  r: 4\n  target_modules: [bogus]\n", names=("target_modules", "bogus"))
    rc("lora-adapter-missing", valid + "lora:\n  r: 4\n  adapter: nope\n", names=("lora.adapter", "nope"), check=False)
    rc("data-train-missing-file", valid.replace("data/unlabelled.jsonl", "data/nope.jsonl"), names=("data.train",))
    rc("data-train-directory", valid.replace("data/unlabelled.jsonl", "data"), names=("data.train", "data"),
       check=False)
    rc("data-train-dev-zero", valid.replace("data/unlabelled.jsonl", "/dev/zero"), names=("/dev/zero", "data.train"),
       check=False)
    rc("data-eval-missing", valid.replace("  train:", "  eval: nope.jsonl\n  train:"), names=("data.eval", "nope.jsonl"),
       check=False)
    rc("extends-missing", "extends: nope.yaml\n" + valid, names=("nope.yaml",), quick=True)
    rc("extends-self", "extends: r.yaml\n" + valid, names=("r.yaml", "extends"))
    rc("extends-cycle", "extends: b.yaml\n" + valid, names=("b.yaml", "r.yaml"), extra={"b.yaml": "extends: r.yaml\n"})
    rc("extends-directory", "extends: data\n" + valid, names=("data", "extends"))
    rc("extends-number", "extends: 5\n" + valid, names=("extends",))
    rc("extends-list-of-missing", "extends: [a.yaml, nope.yaml]\n" + valid, names=("extends", "nope.yaml"),
       extra={"a.yaml": "seed: 1\n"})
    rc("extends-bad-yaml", "extends: b.yaml\n" + valid, names=("b.yaml",), extra={"b.yaml": "a: [\n"})
    rc("extends-unknown-key", "extends: b.yaml\n" + valid, names=("b.yaml", "bogus"), extra={"b.yaml": "bogus: 1\n"})
    rc("extends-dev-zero", "extends: /dev/zero\n" + valid, names=("/dev/zero",))
    rc("extends-chain-20", "extends: e0.yaml\n" + valid, names=("extends", "e1"),
       extra={"e%d.yaml" % i: "extends: e%d.yaml\n" % (i + 1) for i in range(20)})
    rc("billion-laughs", valid + "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
       "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n", names=("r.yaml",))
    rc("deep-nesting", valid + "x: " + "[" * 10000 + "]" * 10000 + "\n", names=("r.yaml",))
    rc("huge-file", valid + "# " + "x" * (5 * 1024 * 1024) + "\n", names=("r.yaml",))
    rc("undefined-alias", valid + "seed: *nope\n", names=("r.yaml", "nope"))
    rc("merge-key-nonmap", valid + "<<: 5\n", names=("r.yaml", "<<"))
    for label, ov in [("unknown", "bogus=1"), ("no-equals", "seed"), ("empty-key", "=1"), ("bad-type", "seed=abc"),
                      ("bad-yaml", "stop_token_ids=[1,"), ("nested-unknown", "lora.bogus=1"),
                      ("dot-only", ".=1"), ("model-missing", "model=/nonexistent/m")]:
        rc("override-" + label, valid, names=(ov.split("=")[0] or "=", "override", ov), argv_extra=(ov,),
           check=(label != "model-missing"))
    cases.append(Case("recipe", "recipe-missing", ["train", "{D}/nope.yaml", "--check"], None, ["nope.yaml"]))
    cases.append(Case("recipe", "recipe-directory", ["train", "{D}", "--check"], None, ["{D}"]))
    cases.append(Case("recipe", "recipe-dev-zero", ["train", "/dev/zero", "--check"], None, ["/dev/zero"]))
    cases.append(Case("recipe", "recipe-no-argument", ["train"], None, ["RECIPE", "recipe"]))
    return cases


def dataset_cases(W):
    cases = []
    valid = open(os.path.join(W, "valid.yaml")).read()

    def ds(name, content, cmds=("generate", "eval", "train", "logprobs"), names=("bad.jsonl",), expect="error",
           quick=False):
        def s(D):
            write(D + "/bad.jsonl", content)
            for k in ("base", "data"):
                os.symlink(os.path.join(W, k), os.path.join(D, k))
            write(D + "/r.yaml", valid.replace("data/unlabelled.jsonl", "bad.jsonl"))
        for c in cmds:
            argv = {"generate": ["generate", "--model", "{W}/base", "--in", "{D}/bad.jsonl", "--max-new-tokens", "2"],
                    "eval": ["eval", "--model", "{W}/base", "--data", "{D}/bad.jsonl", "--max-new-tokens", "2"],
                    "train": ["train", "{D}/r.yaml", "--no-progress"],
                    "logprobs": ["logprobs", "--model", "{W}/base", "--in", "{D}/bad.jsonl"],
                    "tokenize": ["tokenize", "--tokenizer", "{W}/base", "--in", "{D}/bad.jsonl"]}[c]
            cases.append(Case("dataset", name + "/" + c, argv, s, list(names), expect,
                              quick=quick and c in ("generate", "train")))

    ds("empty", "", cmds=("eval", "train"), quick=True)
    ds("blank-lines", "\n\n   \n", cmds=("eval", "train"))
    ds("empty-filter", "", cmds=("generate", "logprobs"), expect="either")  # no rows in: no rows out
    ds("not-json", "hello\n", quick=True)
    ds("array-line", "[1, 2]\n")
    ds("number-line", "5\n")
    ds("missing-fields", '{"q": "x", "answer": "1"}\n', names=("bad.jsonl:1", "prompt"))
    ds("prompt-number", '{"prompt": 5, "answer": "1"}\n', names=("bad.jsonl:1", "prompt"))
    ds("prompt-null", '{"prompt": null, "answer": "1"}\n', names=("bad.jsonl:1", "prompt"))
    ds("prompt-list", '{"prompt": ["a"], "answer": "1"}\n', names=("bad.jsonl:1", "prompt"))
    ds("answer-object", '{"prompt": "Q: 1+2 =", "answer": {"a": 1}}\n', cmds=("eval", "train"),
       names=("bad.jsonl:1", "answer"), expect="either")  # compared as its JSON text
    ds("answer-missing", '{"prompt": "Q: 1+2 ="}\n', cmds=("eval",), names=("bad.jsonl:1", "answer"))
    ds("second-line-bad", '{"prompt": "Q: 1+2 =", "answer": "3"}\n{"prompt": \n', cmds=("generate", "eval", "train"),
       names=("bad.jsonl:2",))
    ds("second-line-bad-ids", '{"input_ids": [1, 2]}\n{"input_ids": \n', cmds=("logprobs",), names=("bad.jsonl:2",))
    ds("invalid-utf8", b'{"prompt": "Q: \xff\xfe =", "answer": "3"}\n', names=("bad.jsonl:1",), quick=True)
    ds("overlong-utf8", b'{"prompt": "Q: \xc0\xaf", "answer": "3"}\n', names=("bad.jsonl:1",))
    ds("lone-surrogate-escape", '{"prompt": "Q: \\ud800 =", "answer": "3"}\n', names=("bad.jsonl:1",),
       expect="either")
    ds("nul-in-line", b'{"prompt": "Q\x00", "answer": "3"}\n', names=("bad.jsonl:1",))
    ds("long-prompt", json.dumps({"prompt": "Q: " + "1+2 " * 500 + "=", "answer": "3"}) + "\n",
       names=("bad.jsonl:1", "context", "max_position_embeddings"), quick=True)
    ds("messages-not-list", '{"messages": "hi", "answer": "3"}\n', cmds=("generate", "eval", "train"),
       names=("bad.jsonl:1", "messages"))
    ds("messages-bad-role", '{"messages": [{"role": 5, "content": "x"}], "answer": "3"}\n', cmds=("eval", "train"),
       names=("bad.jsonl:1", "role"), quick=True)
    ds("input-ids-out-of-range", '{"input_ids": [1, 5, 100000], "answer": "3"}\n', names=("bad.jsonl:1", "100000"),
       quick=True)
    ds("input-ids-negative", '{"input_ids": [1, -5], "answer": "3"}\n', names=("bad.jsonl:1", "-5"))
    ds("input-ids-float", '{"input_ids": [1, 2.5], "answer": "3"}\n', names=("bad.jsonl:1",))
    ds("input-ids-string", '{"input_ids": "1 2", "answer": "3"}\n', names=("bad.jsonl:1", "input_ids"))
    ds("input-ids-empty", '{"input_ids": [], "answer": "3"}\n', names=("bad.jsonl:1", "input_ids"))
    ds("input-ids-huge", '{"input_ids": [99999999999999999999], "answer": "3"}\n', names=("bad.jsonl:1",))
    ds("input-ids-too-long", json.dumps({"input_ids": [5] * 500, "answer": "3"}) + "\n",
       names=("bad.jsonl:1", "context", "max_position_embeddings"))
    ds("deep-json", "[" * 100000 + "]" * 100000 + "\n", cmds=("generate", "train"), names=("bad.jsonl:1",))

    def huge_line(D):
        with open(D + "/bad.jsonl", "w") as f:
            f.write('{"prompt": "')
            f.write("x" * (65 * 1024 * 1024))
            f.write('"}\n')
    cases.append(Case("dataset", "huge-line/generate", ["generate", "--model", "{W}/base", "--in", "{D}/bad.jsonl"],
                      huge_line, ["bad.jsonl:1", "bad.jsonl: line 1"]))
    ds("text-missing", '{"prompt": "x"}\n', cmds=("tokenize",), names=("bad.jsonl:1", "text"))
    ds("text-number", '{"text": 5}\n', cmds=("tokenize",), names=("bad.jsonl:1", "text"))
    for label, path in [("missing", "{D}/nope.jsonl"), ("directory", "{D}"), ("dev-zero", "/dev/zero")]:
        cases.append(Case("dataset", "input-" + label, ["generate", "--model", "{W}/base", "--in", path,
                                                        "--max-new-tokens", "2"], None, [path]))
    cases.append(Case("dataset", "stdin-garbage", ["generate", "--model", "{W}/base", "--in", "-"], None,
                      ["<stdin>", "stdin", "-:1"], stdin=b"\xff\xfe garbage\n"))
    cases.append(Case("dataset", "eval-answer-field-missing", ["eval", "--model", "{W}/base", "--data",
                                                               "{W}/data/eval_dev.jsonl", "--answer-field", "nope",
                                                               "--max-examples", "2"], None, ["nope"]))
    return cases


def flag_cases(W):
    cases = []
    G = ["generate", "--model", "{W}/base", "--in", "{W}/prompts.jsonl", "--max-new-tokens", "2"]
    E = ["eval", "--model", "{W}/base", "--data", "{W}/data/eval_dev.jsonl", "--max-examples", "2",
         "--max-new-tokens", "2"]

    def f(name, argv, names, expect="error", quick=False, setup=None, stdin=None):
        cases.append(Case("flags", name, argv, setup, names, expect, stdin=stdin, quick=quick))

    f("top-unknown-option", ["--bogus"], ["--bogus"], quick=True)
    f("top-unknown-command", ["trian"], ["trian"])
    f("log-level-missing", ["--log-level"], ["--log-level"])
    f("log-level-bogus", ["--log-level", "loud", "info"], ["loud", "log-level"])
    for opt, vals in [("--max-new-tokens", ["abc", "-1", "1e99", "99999999999999999999", "", "0x10"]),
                      ("--temperature", ["abc", "nan", "-1", "inf", "1e999"]),
                      ("--top-p", ["2", "-0.5", "nan", "0"]), ("--top-k", ["-1", "x"]), ("--min-p", ["2", "-1"]),
                      ("--num-samples", ["0", "-3", "100000000000"]), ("--batch-size", ["0", "-1"]),
                      ("--seed", ["-1", "abc", "18446744073709551616"]), ("--threads", ["-1", "100000", "x"]),
                      ("--dtype", ["int8", ""]), ("--device", ["tpu", "cuda:99", "cuda:-1", "cpu:0:1"]),
                      ("--chat-format", ["bogus"])]:
        for v in vals:
            expect = "either" if (opt, v) in (("--seed", "-1"), ("--top-p", "0")) else "error"
            f("generate%s=%s" % (opt, v), G + [opt, v], [opt, "'%s'" % v], expect,
              quick=((opt, v) in (("--max-new-tokens", "abc"), ("--temperature", "nan"), ("--device", "cuda:99"),
                                  ("--threads", "100000"), ("--num-samples", "100000000000"))))
    f("generate-missing-value", G + ["--max-new-tokens"], ["--max-new-tokens"])
    f("generate-missing-model", ["generate", "--in", "{W}/prompts.jsonl"], ["--model"])
    f("generate-missing-in", ["generate", "--model", "{W}/base"], ["--in"], expect="either", stdin=b"")
    f("generate-unknown-flag", G + ["--temprature", "1"], ["--temprature"])
    f("generate-flag-value-on-flag", G + ["--chat=yes"], ["--chat"])
    f("generate-extra-positional", G + ["extra"], ["extra"])
    f("generate-chat-and-special", G + ["--chat", "--add-special-tokens"], ["--chat", "--add-special-tokens",
                                                                            "chat_template"],
      expect="either")
    f("generate-model-missing-dir", ["generate", "--model", "{D}/nope", "--in", "{W}/prompts.jsonl"], ["{D}/nope"])
    f("generate-model-is-file", ["generate", "--model", "{W}/prompts.jsonl", "--in", "{W}/prompts.jsonl"],
      ["prompts.jsonl"])
    f("generate-tokenizer-missing", G + ["--tokenizer", "{D}/nope"], ["{D}/nope"])
    for label, out, names in [("missing-dir", "{D}/no/such/dir/out.jsonl", ["{D}/no/such/dir"]),
                              ("directory", "{D}", ["{D}"]), ("dev-full", "/dev/full", ["/dev/full", "standard output"]),
                              ("proc-file", "/proc/version", ["/proc/version"]),
                              ("under-a-file", "{W}/prompts.jsonl/x.jsonl", ["prompts.jsonl"])]:
        f("generate-out-" + label, G + ["--out", out], names, quick=(label == "dev-full"))
        f("eval-out-" + label, E + ["--out", out], names)
        f("tokenize-out-" + label, ["tokenize", "--tokenizer", "{W}/base", "--text", "x", "--out", out], names)
        f("logprobs-out-" + label, ["logprobs", "--model", "{W}/base", "--in", "{W}/ids.jsonl", "--out", out], names)
    f("out-symlink-loop-ok", ["tokenize", "--tokenizer", "{W}/base", "--text", "x", "--out", "{D}/o.jsonl"], None,
      expect="either", setup=lambda D: os.symlink(D + "/o.jsonl", D + "/o.jsonl"))
    f("stdout-dev-full", ["sh", "-c", "exec \"$SELFRL\" tokenize --tokenizer {W}/base --text x >/dev/full"],
      ["standard output"])
    for opt, vals in [("--samples", ["0", "-1"]), ("--n", ["1"]), ("--extractor", ["regex:(", "bogus", "regex:"]),
                      ("--max-examples", ["-1"]), ("--answer-field", [""])]:
        for v in vals:
            extra = ["--samples", "4"] if opt == "--n" else []
            f("eval%s=%s" % (opt, v), E + extra + [opt, v], [opt, v] if v else [opt])
    f("tokenize-no-input", ["tokenize", "--tokenizer", "{W}/base"], ["--text", "--in"], stdin=b"")
    f("tokenize-text-and-in", ["tokenize", "--tokenizer", "{W}/base", "--text", "x", "--in", "{W}/texts.jsonl"],
      ["--text", "--in"])
    f("tokenize-decode-text", ["tokenize", "--tokenizer", "{W}/base", "--decode", "--text", "x"], ["--decode", "--text"])
    f("logprobs-batch-0", ["logprobs", "--model", "{W}/base", "--in", "{W}/ids.jsonl", "--batch-size", "0"],
      ["--batch-size"])
    f("inspect-missing", ["inspect", "{D}/nope"], ["{D}/nope"])
    f("inspect-dev-zero", ["inspect", "/dev/zero"], ["/dev/zero"])
    f("inspect-empty-dir", ["inspect", "{D}"], ["{D}"])
    f("inspect-jsonl", ["inspect", "{W}/prompts.jsonl"], ["prompts.jsonl"])
    f("plot-missing", ["plot", "{D}/nope.jsonl", "--out", "{D}/x.svg"], ["nope.jsonl"])
    f("plot-bad-ext", ["plot", "{W}/base", "--out", "{D}/x.jpg"], ["x.jpg", "--out"],
      setup=lambda D: None)
    f("plot-garbage-metrics", ["plot", "{D}/m.jsonl", "--out", "{D}/x.svg"], ["m.jsonl"],
      setup=lambda D: write(D + "/m.jsonl", "garbage\n{]\n"))
    f("plot-no-metrics", ["plot", "{D}/m.jsonl", "--out", "{D}/x.svg"], ["m.jsonl"],
      setup=lambda D: write(D + "/m.jsonl", '{"step": 1}\n'))
    f("plot-step-string", ["plot", "{D}/m.jsonl", "--out", "{D}/x.svg"], ["m.jsonl"], expect="either",
      setup=lambda D: write(D + "/m.jsonl", '{"step": "a", "loss": 1}\n{"step": 2, "loss": "x"}\n'))
    f("plot-unknown-metric", ["plot", "{W}/ckpt_run", "--out", "{D}/x.svg", "--metrics", "bogus"], ["bogus"])
    f("plot-out-missing-dir", ["plot", "{W}/ckpt_run", "--out", "{D}/no/dir/x.svg"], ["{D}/no/dir"])
    f("guard-missing", ["guard", "{D}/nope"], ["{D}/nope"])
    f("guard-garbage-metrics", ["guard", "{D}/m.jsonl"], ["m.jsonl"], setup=lambda D: write(D + "/m.jsonl", "garbage\n{]\n"))
    f("guard-no-steps", ["guard", "{D}/m.jsonl"], ["m.jsonl", "entropy"],
      setup=lambda D: write(D + "/m.jsonl", '{"step": 1, "loss": 2}\n'))
    f("guard-entropy-string", ["guard", "{D}/m.jsonl"], ["m.jsonl"], expect="either",
      setup=lambda D: write(D + "/m.jsonl", '{"step": 1, "entropy": "x"}\n{"step": 2, "entropy": 1e308}\n'))
    f("guard-bad-setting", ["guard", "{W}/ckpt_run", "patience=abc"], ["collapse_guard.patience"])
    f("guard-unknown-setting", ["guard", "{W}/ckpt_run", "patienc=2"], ["collapse_guard.patienc"])
    f("guard-unknown-option", ["guard", "{W}/ckpt_run", "--jsn"], ["--jsn"])
    f("demo-out-dev-full", ["demo", "--quick", "--quiet", "--out", "/dev/full"], ["/dev/full"])
    f("demo-out-file", ["demo", "--quick", "--quiet", "--out", "{W}/prompts.jsonl"], ["prompts.jsonl"])
    f("demo-hidden-0", ["demo", "--quick", "--quiet", "--out", "{D}/d", "--hidden", "0"], ["--hidden", "hidden_size"])
    f("demo-layers-neg", ["demo", "--quick", "--quiet", "--out", "{D}/d", "--layers", "-1"],
      ["--layers", "num_hidden_layers"])
    f("demo-set-unknown", ["demo", "--quick", "--quiet", "--out", "{D}/d", "--set", "bogus=1"], ["bogus"])
    f("demo-set-bad-value", ["demo", "--quick", "--quiet", "--out", "{D}/d", "--set", "hidden_size=abc"],
      ["hidden_size"])
    f("demo-set-no-equals", ["demo", "--quick", "--quiet", "--out", "{D}/d", "--set", "hidden_size"], ["hidden_size"])
    f("demo-set-huge", ["demo", "--quick", "--quiet", "--out", "{D}/d", "--set", "num_hidden_layers=100000000000"],
      ["num_hidden_layers"])
    f("demo-grpo-lr-nan", ["demo", "--quick", "--quiet", "--out", "{D}/d", "--grpo-lr", "nan"], ["--grpo-lr"])
    f("lora-no-action", ["lora"], ["ACTION"])
    f("lora-unknown-action", ["lora", "split"], ["split"])
    f("info-bad-flag", ["info", "--benchmrk"], ["--benchmrk"])
    return cases


def checkpoint_cases(W):
    cases = []
    valid = open(os.path.join(W, "valid.yaml")).read()

    def ck(name, mutate, names, resume="{D}/run/checkpoint-1", expect="error", quick=False):
        def s(D):
            for k in ("base", "data"):
                os.symlink(os.path.join(W, k), os.path.join(D, k))
            shutil.copytree(os.path.join(W, "ckpt_run"), D + "/run")
            mutate(D + "/run/checkpoint-1")
            write(D + "/r.yaml", valid.replace("output_dir: out", "output_dir: run2").replace("max_steps: 1", "max_steps: 3")
                  + "save_steps: 1\nresume_from_checkpoint: %s\n" % resume.replace("{D}", D))
        cases.append(Case("checkpoint", name, ["train", "{D}/r.yaml", "--no-progress"], s, names, expect, quick=quick))

    def rm(f):
        return lambda c: os.remove(os.path.join(c, f))

    def trunc(f, n):
        return lambda c: write(os.path.join(c, f), read(os.path.join(c, f))[:n])

    def js(f, fn):
        return lambda c: edit_json(os.path.join(c, f), fn)

    ck("missing-COMPLETE", rm("COMPLETE"), ["checkpoint-1", "COMPLETE"], quick=True)
    ck("missing-model", rm("model.safetensors"), ["model.safetensors"])
    ck("missing-optimizer", rm("optimizer.safetensors"), ["optimizer.safetensors"])
    ck("missing-rng", rm("rng.safetensors"), ["rng.safetensors"])
    ck("missing-trainer-state", rm("trainer_state.json"), ["trainer_state.json"])
    ck("truncated-model", trunc("model.safetensors", 1000), ["model.safetensors"], quick=True)
    ck("truncated-optimizer", trunc("optimizer.safetensors", 1000), ["optimizer.safetensors"])
    ck("trainer-state-bad-json", lambda c: write(c + "/trainer_state.json", "{"), ["trainer_state.json"])
    ck("trainer-state-array", lambda c: write(c + "/trainer_state.json", "[]"), ["trainer_state.json"])
    ck("trainer-state-negative-step", js("trainer_state.json", lambda j: j.update(global_step=-5)),
       ["trainer_state.json", "global_step"])
    ck("trainer-state-step-string", js("trainer_state.json", lambda j: j.update(global_step="x")),
       ["trainer_state.json", "global_step"])
    ck("trainer-state-huge-position", js("trainer_state.json", lambda j: j.update(data_position=2 ** 62)),
       ["trainer_state.json", "data_position"])
    ck("trainer-state-loop-garbage", js("trainer_state.json", lambda j: j["extra"].update(loop={"order": "x"})),
       ["trainer_state.json"])
    ck("trainer-state-order-out-of-range", js("trainer_state.json", lambda j: j["extra"]["loop"].update(
        order=[10 ** 9] * len(j["extra"]["loop"]["order"]))), ["trainer_state.json", "order"])
    ck("trainer-state-cursor-huge", js("trainer_state.json", lambda j: j["extra"]["loop"].update(cursor=10 ** 12)),
       ["trainer_state.json", "cursor"])
    ck("COMPLETE-bad-json", lambda c: write(c + "/COMPLETE", "{"), ["COMPLETE"])
    ck("COMPLETE-wrong-size", js("COMPLETE", lambda j: j["files"].update({"model.safetensors": 5})),
       ["model.safetensors", "COMPLETE"])

    def nan_moment(c):
        h, d = st_parse(c + "/optimizer.safetensors")
        k = next(k for k in h if k != "__metadata__" and h[k]["dtype"] == "F32")
        a, _ = h[k]["data_offsets"]
        d = bytearray(d)
        d[a:a + 4] = struct.pack("<f", float("nan"))
        st_write(c + "/optimizer.safetensors", h, bytes(d))
        write(c + "/.nan_tensor", k)
        edit_json(c + "/COMPLETE", lambda j: j["files"].update(
            {"optimizer.safetensors": os.path.getsize(c + "/optimizer.safetensors")}))
    ck("optimizer-nan-moment", nan_moment, ["optimizer.safetensors", "exp_avg"])

    def opt_shape(c):
        h, d = st_parse(c + "/optimizer.safetensors")
        k = next(k for k in h if k != "__metadata__" and len(h[k]["shape"]) == 2)
        h[k]["shape"] = [h[k]["shape"][1], h[k]["shape"][0]]
        st_write(c + "/optimizer.safetensors", h, d)
        edit_json(c + "/COMPLETE", lambda j: j["files"].update(
            {"optimizer.safetensors": os.path.getsize(c + "/optimizer.safetensors")}))
    ck("optimizer-shape-mismatch", opt_shape, ["optimizer.safetensors"])

    def rng_garbage(c):
        h, d = st_parse(c + "/rng.safetensors")
        st_write(c + "/rng.safetensors", h, bytes(len(d)))
    ck("rng-zeros", rng_garbage, ["rng.safetensors"])
    ck("resume-missing-path", lambda c: None, ["nope"], resume="{D}/nope")
    ck("resume-is-file", lambda c: None, ["r.yaml", "resume_from_checkpoint"], resume="{D}/r.yaml")
    ck("resume-dev-zero", lambda c: None, ["/dev/zero"], resume="/dev/zero")
    ck("resume-config-mismatch", js("config.json", lambda j: j.update(hidden_size=64, intermediate_size=128)),
       ["checkpoint-1", "config.json", "hidden_size", "model.safetensors"])
    return cases


def filetype_cases(W):
    cases = []

    def ft(name, target, argv, names, quick=False):
        # target: file inside the model dir replaced by a special file
        def s(D, kind=name):
            m = copy_model(W, D)
            p = os.path.join(m, target)
            if os.path.exists(p):
                os.remove(p)
            if kind.startswith("fifo"):
                os.mkfifo(p)
            elif kind.startswith("directory"):
                os.mkdir(p)
            elif kind.startswith("symlink-loop"):
                os.symlink(p, p)
            elif kind.startswith("dangling"):
                os.symlink(D + "/nowhere", p)
            elif kind.startswith("dev-zero"):
                os.symlink("/dev/zero", p)
            elif kind.startswith("dev-null"):
                os.symlink("/dev/null", p)
            elif kind.startswith("unreadable"):
                write(p, "{}")
                os.chmod(p, 0)
        cases.append(Case("filetypes", name + "/" + target, argv, s, names, quick=quick))

    for kind in ("fifo", "directory", "symlink-loop", "dangling", "dev-zero", "dev-null"):
        for target, argv in [("config.json", GEN), ("model.safetensors", GEN), ("tokenizer.model", GEN),
                             ("tokenizer_config.json", GEN), ("model.safetensors", INSPECT_FILE)]:
            ft(kind, target, argv, [target],
               quick=(kind in ("fifo", "dev-zero") and target in ("config.json", "tokenizer.model")))
    if os.geteuid() != 0:
        ft("unreadable", "config.json", GEN, ["config.json"])

    def fifo_recipe(D):
        os.mkfifo(D + "/r.yaml")
    cases.append(Case("filetypes", "fifo/recipe", ["train", "{D}/r.yaml", "--check"], fifo_recipe, ["r.yaml"],
                      quick=True))
    cases.append(Case("filetypes", "symlink-loop/recipe", ["train", "{D}/r.yaml", "--check"],
                      lambda D: os.symlink(D + "/r.yaml", D + "/r.yaml"), ["r.yaml"]))
    cases.append(Case("filetypes", "model-dir-symlink-loop", ["generate", "--model", "{D}/m", "--in", "{W}/prompts.jsonl"],
                      lambda D: os.symlink(D + "/m", D + "/m"), ["{D}/m"]))
    cases.append(Case("filetypes", "model-dir-fifo", ["generate", "--model", "{D}/m", "--in", "{W}/prompts.jsonl"],
                      lambda D: os.mkfifo(D + "/m"), ["{D}/m"]))
    cases.append(Case("filetypes", "symlink-loop/jsonl", ["generate", "--model", "{W}/base", "--in", "{D}/p.jsonl"],
                      lambda D: os.symlink(D + "/p.jsonl", D + "/p.jsonl"), ["p.jsonl"]))
    return cases


def lora_cases(W):
    cases = []
    M = ["lora", "merge", "--base", "{W}/base", "--adapter", "{D}/a", "--out", "{D}/out"]
    header, data = st_parse(os.path.join(W, "adapter", "adapter_model.safetensors"))

    def la(name, mutate, names, argv=M, expect="error", quick=False):
        def s(D):
            shutil.copytree(os.path.join(W, "adapter"), D + "/a")
            mutate(D + "/a")
        cases.append(Case("lora", name, argv, s, names, expect, quick=quick))

    def cfg(fn):
        return lambda a: edit_json(a + "/adapter_config.json", fn)

    def st(fn, d_=None):
        def m(a):
            h = json.loads(json.dumps(header))
            r = fn(h)
            st_write(a + "/adapter_model.safetensors", h if r is None else r, data if d_ is None else d_)
        return m

    AC, AM = "adapter_config.json", "adapter_model.safetensors"
    la("config-missing", lambda a: os.remove(a + "/" + AC), [AC], quick=True)
    la("config-bad-json", lambda a: write(a + "/" + AC, "{"), [AC])
    la("config-array", lambda a: write(a + "/" + AC, "[]"), [AC])
    for key, vals in [("r", [0, -4, "4", 2 ** 40, 8, None, 4.5]), ("lora_alpha", ["x", -1, 0, None, float("nan")]),
                      ("target_modules", [[], ["bogus"], "bogus_proj", 5, [5]]),
                      ("peft_type", ["PREFIX_TUNING", 5]), ("lora_dropout", [-1, "x", 2]),
                      ("use_rslora", ["yes"]), ("fan_in_fan_out", [True]), ("bias", ["all"]),
                      ("modules_to_save", [["lm_head"]]), ("use_dora", [True]), ("layers_to_transform", [[5]])]:
        for v in vals:
            exp = "error"
            if (key, v) in (("lora_dropout", 2), ("lora_dropout", -1), ("target_modules", "bogus_proj")):
                exp = "either"
            la("config-%s=%s" % (key, json.dumps(v)), cfg(lambda j, k=key, v=v: j.update({k: v})), [AC, key], expect=exp,
               quick=((key, v) in (("r", 0), ("r", 2 ** 40), ("target_modules", ["bogus"]))))
    la("config-missing-r", cfg(lambda j: drop(j, "r")), [AC, "r"])
    la("weights-missing", lambda a: os.remove(a + "/" + AM), [AM], quick=True)
    la("weights-truncated", lambda a: write(a + "/" + AM, read(a + "/" + AM)[:200]), [AM])
    la("weights-empty", lambda a: write(a + "/" + AM, b""), [AM])
    k0 = next(k for k in header if k != "__metadata__" and "lora_A" in k)
    la("weights-shape-wrong-rank", st(lambda h: h[k0].update(shape=[h[k0]["shape"][0] * 2, h[k0]["shape"][1] // 2])),
       [AM, k0.replace("base_model.model.", "")[:20]])
    la("weights-transposed", st(lambda h: h[k0].update(shape=list(reversed(h[k0]["shape"])))), [AM, "lora_A"])
    la("weights-unknown-layer", st(lambda h: h.update({k0.replace("layers.0", "layers.7"): h.pop(k0)})),
       [AM, "layers.7"])
    la("weights-unknown-module", st(lambda h: h.update({k0.replace("q_proj", "bogus_proj"): h.pop(k0)})),
       [AM, "bogus_proj"])
    la("weights-missing-B", st(lambda h: [h.pop(k) for k in list(h) if "lora_B" in k] and None), [AM, "lora_B"])
    la("weights-dtype-int", st(lambda h: h[k0].update(dtype="I32")), [AM, "lora_A", "I32"])
    la("weights-nan", st(lambda h: None, struct.pack("<f", float("nan")) * (len(data) // 4)), [AM, "lora"],
       expect="warn")
    la("base-missing", lambda a: None, ["{D}/nope"], argv=["lora", "merge", "--base", "{D}/nope", "--adapter", "{D}/a",
                                                          "--out", "{D}/out"])
    la("base-mismatch", lambda a: None, ["hidden", "shape", "q_proj"],
       argv=["lora", "merge", "--base", "{D}/b", "--adapter", "{D}/a", "--out", "{D}/out"])
    la("out-is-file", lambda a: write(os.path.dirname(a) + "/out", "x"), ["out"])
    la("out-dev-full", lambda a: None, ["/dev/full"], argv=M[:-1] + ["/dev/full"])
    la("out-missing-parent", lambda a: None, ["{D}/no/such"], argv=M[:-1] + ["{D}/no/such/out"], expect="either")
    la("dtype-int8", lambda a: None, ["--dtype", "int8"], argv=M + ["--dtype", "int8"])
    la("missing-adapter-flag", lambda a: None, ["--adapter"], argv=["lora", "merge", "--base", "{W}/base", "--out",
                                                                   "{D}/out"])
    # base-mismatch needs another base: a copy whose q_proj is [16, 32] instead of [32, 32].
    def narrow_base(D):
        m = copy_model(W, D, name="b")
        h, d = st_parse(m + "/model.safetensors")
        off, chunks, nh = 0, [], {"__metadata__": {"format": "pt"}}
        for k in [k for k in h if k != "__metadata__"]:
            if k.endswith("q_proj.weight"):
                h[k]["shape"] = [16, 32]
            a = h[k]["data_offsets"][0]
            n = 4
            for x in h[k]["shape"]:
                n *= x
            nh[k] = dict(h[k], data_offsets=[off, off + n])
            chunks.append(d[a:a + n])
            off += n
        st_write(m + "/model.safetensors", nh, b"".join(chunks))

    for c in cases:
        if c.name == "base-mismatch":
            c.setup = lambda D, old=c.setup: (old(D), narrow_base(D))
    return cases


CATEGORIES = {
    "safetensors": safetensors_cases, "shards": shard_cases, "config": config_cases, "tokenizer": tokenizer_cases,
    "generation_config": generation_config_cases, "recipe": recipe_cases, "dataset": dataset_cases,
    "flags": flag_cases, "checkpoint": checkpoint_cases, "filetypes": filetype_cases, "lora": lora_cases,
}


# ---------------------------------------------------------------------------------------------
# Running and classifying.


def run_case(case, selfrl, world, root, index, timeout):
    d = os.path.join(root, "case%04d" % index)
    os.makedirs(d)
    try:
        if case.setup:
            case.setup(d)
    except Exception as e:  # a bug in the sweep itself, not in selfrl
        return case, "setup-failed", None, "setup failed: %r" % e, 0.0, []

    def sub(s):
        return s.replace("{W}", world).replace("{D}", d)

    argv = [sub(a) for a in case.argv]
    is_shell = bool(argv) and argv[0] == "sh"
    if is_shell:
        cmd = argv
    else:
        cmd = [selfrl] + argv
    names = [sub(n) for n in case.names] if case.names else None
    env = dict(os.environ, SELFRL_LOG_LEVEL=os.environ.get("SELFRL_LOG_LEVEL", "info"), SELFRL=selfrl,
               OMP_NUM_THREADS="1")
    t0 = time.time()
    p = subprocess.Popen(cmd, cwd=d, stdin=subprocess.PIPE if case.stdin is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    hung = False
    try:
        out, _ = p.communicate(input=case.stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        hung = True
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
    dt = time.time() - t0
    text = out.decode("utf-8", errors="replace")
    rc = p.returncode
    if hung:
        cls = "hang"
    elif rc < 0 or (is_shell and rc > 128):
        cls = "crash"
    elif "internal error" in text:
        cls = "internal"
    elif rc == 0:
        if case.expect == "either":
            cls = "clean"
        elif case.expect == "warn" and names and any(n in text for n in names) and ("warn" in text.lower() or " W " in text):
            cls = "clean"
        else:
            cls = "status0"
    elif "selfrl: error:" not in text:
        cls = "unclear"
    elif names and not any(n in text for n in names):
        cls = "unclear"
    else:
        cls = "clean"
    return case, cls, rc, text, dt, cmd


def shell_quote(a):
    if a and all(c.isalnum() or c in "/._-=:,+@%" for c in a):
        return a
    return "'" + a.replace("'", "'\\''") + "'"


def tidy(root):
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            try:
                if not os.path.islink(p) and stat.S_IMODE(os.lstat(p).st_mode) == 0:
                    os.chmod(p, 0o700)
            except OSError:
                pass
    shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--selfrl", required=True, help="the selfrl program")
    ap.add_argument("--only", action="append", help="run only these categories (repeatable, or comma-separated): "
                    + ", ".join(CATEGORIES))
    ap.add_argument("--case", help="run only the cases whose name contains this")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--quick", action="store_true", help="a subset of a few cases per category")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--strict", action="store_true", help="unclear messages fail the sweep too")
    ap.add_argument("--verbose", action="store_true", help="print every case's output tail")
    args = ap.parse_args()
    selfrl = os.path.abspath(args.selfrl)
    if not os.access(selfrl, os.X_OK):
        sys.exit("sweep: %s is not an executable" % selfrl)
    only = None
    if args.only:
        only = [c for o in args.only for c in o.split(",") if c]
        for c in only:
            if c not in CATEGORIES:
                sys.exit("sweep: unknown category '%s' (one of: %s)" % (c, ", ".join(CATEGORIES)))

    root = tempfile.mkdtemp(prefix="selfrl-hostile-")
    t_start = time.time()
    try:
        world = os.path.join(root, "world")
        build_world(selfrl, world)
        cases = []
        for cat, fn in CATEGORIES.items():
            if only is None or cat in only:
                cases += fn(world)
        if args.case:
            cases = [c for c in cases if args.case in c.name]
        if args.quick:
            cases = [c for c in cases if c.quick]
        if args.list:
            for c in cases:
                print("%-18s %s" % (c.category, c.name))
            print("%d cases" % len(cases))
            return 0
        results = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
            futs = [ex.submit(run_case, c, selfrl, world, root, i, args.timeout) for i, c in enumerate(cases)]
            for c, f in zip(cases, futs):
                try:
                    results.append(f.result())
                except Exception as e:  # a bug in the sweep itself
                    results.append((c, "setup-failed", None, "sweep error: %r" % e, 0.0, []))
        elapsed = time.time() - t_start

        counts = {k: 0 for k in CLASSES + ["setup-failed"]}
        per_cat = {}
        for case, cls, rc, text, dt, cmd in results:
            counts[cls] += 1
            per_cat.setdefault(case.category, {k: 0 for k in CLASSES + ["setup-failed"]})[cls] += 1
        print("\nhostile sweep: %d cases in %.1f s (%s)\n" % (len(results), elapsed, selfrl))
        cols = CLASSES + (["setup-failed"] if counts["setup-failed"] else [])
        print("%-18s %6s " % ("category", "cases") + " ".join("%8s" % c for c in cols))
        for cat in CATEGORIES:
            if cat in per_cat:
                row = per_cat[cat]
                print("%-18s %6d " % (cat, sum(row.values())) + " ".join("%8d" % row[c] for c in cols))
        print("%-18s %6d " % ("total", len(results)) + " ".join("%8d" % counts[c] for c in cols))
        accepted = [r for r in results if r[1] == "clean" and r[2] == 0]
        if accepted:
            print("\n%d of the clean cases are inputs that may be accepted (a missing optional key, NaN weights "
                  "with a warning, ...) and were: status 0%s" % (
                      len(accepted), "" if args.verbose else " (--verbose lists them)"))
        bad = [r for r in results if r[1] != "clean"]
        if bad:
            print("\nnon-clean cases:")
        for case, cls, rc, text, dt, cmd in bad:
            lines = text.strip().splitlines()
            key = [l for l in lines if l.startswith("selfrl:") or "error" in l.lower()][:3]
            tail = "\n".join(key + [l for l in lines[-4:] if l not in key])[-1500:]
            print("\n[%s] %s/%s (status %s, %.1f s)\n  $ %s\n  %s" % (
                cls.upper(), case.category, case.name, rc, dt, " ".join(shell_quote(a) for a in cmd),
                tail.replace("\n", "\n  ")))
        if args.verbose:
            print("\nall cases:")
            for case, cls, rc, text, dt, cmd in results:
                tail = text.strip().splitlines()[-1:] if text.strip() else [""]
                print("  %-8s %-50s %s" % (cls, case.category + "/" + case.name, tail[0][:200]))
        failing = sum(counts[c] for c in FAILING) + counts["setup-failed"]
        if args.strict:
            failing += counts["unclear"]
        return 1 if failing else 0
    finally:
        if args.keep:
            print("work directory kept: %s" % root)
        else:
            tidy(root)


if __name__ == "__main__":
    sys.exit(main())
