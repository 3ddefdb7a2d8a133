#!/usr/bin/env python3
"""GPU baseline for bench_rollout: Hugging Face transformers' greedy generate() on the same
model shape (random weights), the way Python RL frameworks sample without vLLM (TRL's
use_vllm=False path). Prefill tok/s = prompt tokens / one forward over the prompts with a cache;
decode tok/s = generated tokens / (generate() time - prefill time). Median of --runs after one
warm-up. transformers computes no per-token entropy / self-certainty here, libselfrl does.

  python3 benchmarks/python/hf_generate_baseline.py --model qwen2.5-0.5b --batch 8 --device cuda --dtype bfloat16
"""
import argparse
import json
import statistics
import time

import torch
import transformers

PRESETS = {
    "llama-25m": ("llama", dict(vocab_size=8192, hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                                num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=2048,
                                rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False)),
    "qwen2.5-0.5b": ("qwen2", dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                   num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                                   rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True)),
    "llama-1b": ("llama", dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                               num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072,
                               rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True)),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-25m", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    a = ap.parse_args()
    kind, kw = PRESETS[a.model]
    cfg = (transformers.LlamaConfig if kind == "llama" else transformers.Qwen2Config)(**kw, eos_token_id=None,
                                                                                      bos_token_id=None)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(cfg).to(a.device, getattr(torch, a.dtype)).eval()
    params = sum(p.numel() for p in model.parameters())
    ids = torch.tensor([[(b * 131 + t * 17) % 8192 for t in range(a.prompt_len)] for b in range(a.batch)],
                       device=a.device)
    mask = torch.ones_like(ids)
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)

    def once():
        with torch.no_grad():
            sync()
            t0 = time.perf_counter()
            model(ids, attention_mask=mask, use_cache=True)
            sync()
            prefill = time.perf_counter() - t0
            t0 = time.perf_counter()
            out = model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=a.new_tokens,
                                 min_new_tokens=a.new_tokens, pad_token_id=0)
            sync()
            total = time.perf_counter() - t0
        assert out.shape[1] == a.prompt_len + a.new_tokens
        return prefill, total

    once()
    pre, dec, tot = [], [], []
    for _ in range(a.runs):
        p, t = once()
        pre.append(a.batch * a.prompt_len / p)
        dec.append(a.batch * a.new_tokens / max(t - p, 1e-9))
        tot.append(t)
    peak = torch.cuda.max_memory_allocated() / 2**20 if a.device.startswith("cuda") else None
    print(json.dumps({"impl": "transformers", "transformers": transformers.__version__, "model": a.model,
                      "device": a.device, "dtype": a.dtype, "params": params, "batch": a.batch,
                      "prompt_len": a.prompt_len, "new_tokens": a.new_tokens, "runs": a.runs,
                      "prefill_tok_s": statistics.median(pre), "decode_tok_s": statistics.median(dec),
                      "total_s": statistics.median(tot), "peak_gpu_mb": peak}), flush=True)


if __name__ == "__main__":
    main()
