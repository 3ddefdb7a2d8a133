#!/usr/bin/python3
"""Independent reference for libselfrl's model tests (run with Debian's /usr/bin/python3 + torch).

It writes tiny random Hugging Face-format model directories (config.json + safetensors written
with struct/json, optionally sharded) and runs a forward pass written from transformers'
modeling_llama.py / modeling_qwen2.py / modeling_qwen3.py and modeling_rope_utils.py, in
float64, one sequence at a time and without a KV cache, so that it shares nothing with the
C++ implementation but the formulas.

  hf_reference.py make-model --arch llama|qwen2|qwen3 --out DIR [--seed S] [--tied]
                             [--llama3-rope] [--shards N] [--bias] [--eos ID]
  hf_reference.py logprobs --model DIR --in seqs.jsonl --out out.jsonl
  hf_reference.py greedy   --model DIR --in prompts.jsonl --max-new-tokens N --out out.jsonl
  hf_reference.py make-adapter --model DIR --out ADIR --r R --alpha A --targets q_proj,v_proj
                               [--rslora] [--seed S]
  hf_reference.py logprobs --model DIR --adapter ADIR ...   (PEFT's LoRA: W + s·B·A, s = α/r or α/√r)

Adapters are written the way PEFT saves them (adapter_config.json, adapter_model.safetensors
with base_model.model.<module>.lora_A.weight / lora_B.weight), from PEFT's documented format.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

# ---------------------------------------------------------------------------- safetensors

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors:
        data = np.ascontiguousarray(t.detach().to(torch.float32).numpy()).tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        buf = data[b:e]
        if info["dtype"] == "BF16":
            u = np.frombuffer(buf, dtype=np.uint16).astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(buf, dtype=_DTYPES[info["dtype"]])
        out[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
    return out


def load_model_dir(d):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    index = os.path.join(d, "model.safetensors.index.json")
    weights = {}
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        for fn in files:
            weights.update(read_safetensors(os.path.join(d, fn)))
    else:
        weights = read_safetensors(os.path.join(d, "model.safetensors"))
    return cfg, {k: v.to(torch.float64) for k, v in weights.items()}

# ---------------------------------------------------------------------------- LoRA (PEFT)

_PEFT_PREFIX = "base_model.model."


def make_adapter(args):
    """A PEFT-format LoRA adapter with random A and B (B non-zero, so it changes the model)."""
    cfg, w = load_model_dir(args.model)
    g = torch.Generator().manual_seed(args.seed)
    targets = args.targets.split(",")
    tensors = []
    for name in sorted(w):
        if not name.endswith(".weight"):
            continue
        module = name[: -len(".weight")]
        if module.split(".")[-1] not in targets:
            continue
        out_f, in_f = w[name].shape
        a = torch.randn(args.r, in_f, generator=g) * 0.2
        b = torch.randn(out_f, args.r, generator=g) * 0.2
        tensors += [(_PEFT_PREFIX + module + ".lora_A.weight", a), (_PEFT_PREFIX + module + ".lora_B.weight", b)]
    os.makedirs(args.out, exist_ok=True)
    write_safetensors(os.path.join(args.out, "adapter_model.safetensors"), tensors)
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": args.r, "lora_alpha": args.alpha,
              "lora_dropout": 0.0, "target_modules": targets, "bias": "none", "use_rslora": args.rslora,
              "fan_in_fan_out": False, "modules_to_save": None, "init_lora_weights": True,
              "base_model_name_or_path": args.model, "inference_mode": True, "revision": None}
    with open(os.path.join(args.out, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2)


def apply_adapter(w, adir):
    """The base weights with every adapted projection replaced by W + s·B·A (float64)."""
    with open(os.path.join(adir, "adapter_config.json")) as f:
        acfg = json.load(f)
    r, alpha = acfg["r"], acfg["lora_alpha"]
    s = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
    lw = read_safetensors(os.path.join(adir, "adapter_model.safetensors"))
    w = dict(w)
    for key, a in lw.items():
        if not key.endswith(".lora_A.weight"):
            continue
        module = key[len(_PEFT_PREFIX): -len(".lora_A.weight")]
        b = lw[key.replace(".lora_A.", ".lora_B.")]
        w[module + ".weight"] = w[module + ".weight"] + s * (b.to(torch.float64) @ a.to(torch.float64))
    return w

# ---------------------------------------------------------------------------- tiny models


def make_model(args):
    g = torch.Generator().manual_seed(args.seed)
    arch = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[args.arch]
    vocab, hidden, inter, layers, heads, kv = 97, 48, 80, 2, 4, 2
    head_dim = 16 if args.arch == "qwen3" else hidden // heads  # qwen3: head_dim * heads != hidden
    cfg = {
        "architectures": [arch], "model_type": args.arch, "vocab_size": vocab, "hidden_size": hidden,
        "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv, "head_dim": head_dim, "max_position_embeddings": 256,
        "rms_norm_eps": 1e-5 if args.arch == "llama" else 1e-6, "rope_theta": 10000.0 if args.arch == "llama" else 1000000.0,
        "tie_word_embeddings": bool(args.tied), "attention_bias": bool(args.bias), "hidden_act": "silu",
        "torch_dtype": "float32", "bos_token_id": 1, "eos_token_id": args.eos,
    }
    if args.llama3_rope:
        cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
        cfg["rope_theta"] = 500000.0

    def randn(*shape, std=0.3):
        return torch.randn(*shape, generator=g) * std

    t = [("model.embed_tokens.weight", randn(vocab, hidden, std=1.0))]
    for i in range(layers):
        p = f"model.layers.{i}."
        t.append((p + "input_layernorm.weight", 1 + randn(hidden, std=0.1)))
        t.append((p + "self_attn.q_proj.weight", randn(heads * head_dim, hidden)))
        t.append((p + "self_attn.k_proj.weight", randn(kv * head_dim, hidden)))
        t.append((p + "self_attn.v_proj.weight", randn(kv * head_dim, hidden)))
        t.append((p + "self_attn.o_proj.weight", randn(hidden, heads * head_dim)))
        qkv_bias = args.arch == "qwen2" or args.bias
        if qkv_bias:
            t.append((p + "self_attn.q_proj.bias", randn(heads * head_dim, std=0.1)))
            t.append((p + "self_attn.k_proj.bias", randn(kv * head_dim, std=0.1)))
            t.append((p + "self_attn.v_proj.bias", randn(kv * head_dim, std=0.1)))
        if args.bias and args.arch != "qwen2":
            t.append((p + "self_attn.o_proj.bias", randn(hidden, std=0.1)))
        if args.arch == "qwen3":
            t.append((p + "self_attn.q_norm.weight", 1 + randn(head_dim, std=0.1)))
            t.append((p + "self_attn.k_norm.weight", 1 + randn(head_dim, std=0.1)))
        t.append((p + "mlp.gate_proj.weight", randn(inter, hidden)))
        t.append((p + "mlp.up_proj.weight", randn(inter, hidden)))
        t.append((p + "mlp.down_proj.weight", randn(hidden, inter)))
        t.append((p + "post_attention_layernorm.weight", 1 + randn(hidden, std=0.1)))
    t.append(("model.norm.weight", 1 + randn(hidden, std=0.1)))
    if not args.tied:
        t.append(("lm_head.weight", randn(vocab, hidden)))

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if args.shards > 1:
        per = math.ceil(len(t) / args.shards)
        weight_map, total = {}, 0
        for s in range(args.shards):
            fn = f"model-{s + 1:05d}-of-{args.shards:05d}.safetensors"
            part = t[s * per:(s + 1) * per]
            write_safetensors(os.path.join(args.out, fn), part)
            for name, x in part:
                weight_map[name] = fn
                total += x.numel() * 4
        with open(os.path.join(args.out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    else:
        write_safetensors(os.path.join(args.out, "model.safetensors"), t)

# ---------------------------------------------------------------------------- forward


def rms_norm(x, w, eps):
    # LlamaRMSNorm
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def inv_freq(cfg):
    d = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    base = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.int64).to(torch.float32) / d))
    rs = cfg.get("rope_scaling")
    if rs and (rs.get("rope_type") or rs.get("type")) == "llama3":
        # modeling_rope_utils._compute_llama3_parameters
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        lo_wl, hi_wl = old / lo, old / hi
        wl = 2 * math.pi / inv
        llama = torch.where(wl > lo_wl, inv / factor, inv)
        smooth = (old / wl - lo) / (hi - lo)
        smoothed = (1 - smooth) * llama / factor + smooth * llama
        medium = ~(wl < hi_wl) * ~(wl > lo_wl)
        inv = torch.where(medium, smoothed, llama)
    return inv


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward_logits(cfg, w, ids):
    """logits [T, V] (float64) of one unpadded sequence."""
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or cfg["hidden_size"] // H
    eps = cfg["rms_norm_eps"]
    qwen3 = cfg["model_type"] == "qwen3"
    T = len(ids)
    x = w["model.embed_tokens.weight"][torch.tensor(ids)]
    freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq(cfg))
    emb = torch.cat((freqs, freqs), -1).to(torch.float64)
    cos, sin = emb.cos(), emb.sin()
    causal = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)

    def lin(h, name):
        y = h @ w[name + ".weight"].T
        if name + ".bias" in w:
            y = y + w[name + ".bias"]
        return y

    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = lin(h, p + "self_attn.q_proj").view(T, H, D)
        k = lin(h, p + "self_attn.k_proj").view(T, KV, D)
        v = lin(h, p + "self_attn.v_proj").view(T, KV, D)
        if qwen3:
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=0)  # repeat_kv
        v = v.repeat_interleave(H // KV, dim=0)
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(D) + causal, dim=-1)
        o = (att @ v).transpose(0, 1).reshape(T, H * D)
        x = x + lin(o, p + "self_attn.o_proj")
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        x = x + lin(torch.nn.functional.silu(lin(h, p + "mlp.gate_proj")) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.T


def read_ids(path):
    with open(path) as f:
        return [json.loads(line)["input_ids"] for line in f if line.strip()]


def cmd_logprobs(args):
    cfg, w = load_model_dir(args.model)
    if getattr(args, "adapter", None):
        w = apply_adapter(w, args.adapter)
    with open(args.out, "w") as f:
        for ids in read_ids(args.input):
            logp = torch.log_softmax(forward_logits(cfg, w, ids), -1)
            lp = [logp[t - 1, ids[t]].item() for t in range(1, len(ids))]
            f.write(json.dumps({"logprobs": lp}) + "\n")


def cmd_greedy(args):
    cfg, w = load_model_dir(args.model)
    eos = cfg.get("eos_token_id")
    eos = set(eos if isinstance(eos, list) else ([] if eos is None else [eos]))
    with open(args.out, "w") as f:
        for ids in read_ids(args.input):
            seq, out, margins = list(ids), [], []
            for _ in range(args.max_new_tokens):
                logits = forward_logits(cfg, w, seq)[-1]
                top2 = torch.topk(logits, 2).values
                margins.append((top2[0] - top2[1]).item())
                tok = int(torch.argmax(logits))
                out.append(tok)
                seq.append(tok)
                if tok in eos:
                    break
            f.write(json.dumps({"token_ids": out, "min_margin": min(margins)}) + "\n")


def cmd_prepare(args):
    """make-model, then the reference logprobs and greedy outputs for it: one Python start-up."""
    make_model(args)
    model = args.out
    cmd_logprobs(argparse.Namespace(model=model, input=args.seqs, out=os.path.join(model, "ref_logprobs.jsonl")))
    cmd_greedy(argparse.Namespace(model=model, input=args.prompts, out=os.path.join(model, "ref_greedy.jsonl"),
                                  max_new_tokens=args.max_new_tokens))


def add_model_flags(m):
    m.add_argument("--arch", required=True, choices=["llama", "qwen2", "qwen3"])
    m.add_argument("--out", required=True)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--tied", action="store_true")
    m.add_argument("--llama3-rope", action="store_true")
    m.add_argument("--bias", action="store_true")
    m.add_argument("--shards", type=int, default=1)
    m.add_argument("--eos", type=int, default=None)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    add_model_flags(sub.add_parser("make-model"))
    pr = sub.add_parser("prepare")
    add_model_flags(pr)
    pr.add_argument("--seqs", required=True)
    pr.add_argument("--prompts", required=True)
    pr.add_argument("--max-new-tokens", type=int, default=8)
    lp = sub.add_parser("logprobs")
    lp.add_argument("--model", required=True)
    lp.add_argument("--in", dest="input", required=True)
    lp.add_argument("--out", required=True)
    lp.add_argument("--adapter", default=None)
    ad = sub.add_parser("make-adapter")
    ad.add_argument("--model", required=True)
    ad.add_argument("--out", required=True)
    ad.add_argument("--r", type=int, default=4)
    ad.add_argument("--alpha", type=float, default=8.0)
    ad.add_argument("--targets", default="q_proj,v_proj")
    ad.add_argument("--rslora", action="store_true")
    ad.add_argument("--seed", type=int, default=0)
    gr = sub.add_parser("greedy")
    gr.add_argument("--model", required=True)
    gr.add_argument("--in", dest="input", required=True)
    gr.add_argument("--out", required=True)
    gr.add_argument("--max-new-tokens", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    {"make-model": make_model, "make-adapter": make_adapter, "prepare": cmd_prepare, "logprobs": cmd_logprobs, "greedy": cmd_greedy}[args.cmd](args)


if __name__ == "__main__":
    main()
