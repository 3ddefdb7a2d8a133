#!/usr/bin/env python3
"""libselfrl against Hugging Face transformers on a CUDA GPU (run by scripts/gpu_check.sh).

For tiny random Llama (with llama3 RoPE scaling), Qwen2 and Qwen3 models that *transformers*
creates and saves (its own config.json layout, e.g. transformers 5's "rope_parameters"):
  - `selfrl logprobs --device cuda` vs transformers' log-softmax, float32 and bfloat16;
  - greedy `selfrl generate --device cuda` vs transformers' greedy generate();
and, when given, a model that libselfrl trained on the GPU and saved (EXPORT_DIR): transformers
loads it and gives the same log-probs as `selfrl logprobs`.

  python3 scripts/gpu/hf_parity.py SELFRL_BINARY WORK_DIR [EXPORT_DIR]

Prints one JSON line per check and a summary; exits 1 when a check fails.
"""
import json
import os
import subprocess
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM

SELFRL, WORK = sys.argv[1], sys.argv[2]
EXPORT = sys.argv[3] if len(sys.argv) > 3 else None
DEV = "cuda"
failures = []


def report(check, ok, **info):
    print(json.dumps({"check": check, "ok": bool(ok), **info}), flush=True)
    if not ok:
        failures.append(check)


def tiny_config(arch):
    common = dict(vocab_size=211, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  rms_norm_eps=1e-6, tie_word_embeddings=False, eos_token_id=2, bos_token_id=1)
    if arch == "llama3":
        return transformers.LlamaConfig(**common, rope_theta=500000.0, rope_scaling={
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16})
    if arch == "qwen2":
        return transformers.Qwen2Config(**common, rope_theta=1000000.0)
    if arch == "qwen3":
        return transformers.Qwen3Config(**common, head_dim=24, rope_theta=1000000.0)
    raise ValueError(arch)


def run_selfrl(*args):
    r = subprocess.run([SELFRL, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"selfrl {' '.join(args)} failed ({r.returncode}): {r.stderr[-2000:]}")
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def hf_logprobs(model, seq):
    ids = torch.tensor([seq], device=DEV)
    with torch.no_grad():
        logits = model(ids).logits.float()
    lp = torch.log_softmax(logits[0, :-1], -1)
    return lp.gather(1, ids[0, 1:, None])[:, 0].cpu()


def compare_logprobs(model_dir, model, seqs, dtype, tol, check):
    seq_file = os.path.join(WORK, "seqs.jsonl")
    with open(seq_file, "w") as f:
        for s in seqs:
            f.write(json.dumps({"input_ids": s}) + "\n")
    ours = run_selfrl("logprobs", "--model", model_dir, "--in", seq_file, "--device", DEV, "--dtype", dtype)
    worst = 0.0
    for s, o in zip(seqs, ours):
        ref = hf_logprobs(model, s)
        worst = max(worst, (torch.tensor(o["logprobs"]) - ref).abs().max().item())
    report(check, worst <= tol, max_abs_diff=worst, tolerance=tol, dtype=dtype)


def main():
    torch.manual_seed(0)
    os.makedirs(WORK, exist_ok=True)
    print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__,
                      "gpu": torch.cuda.get_device_name(0)}), flush=True)
    g = torch.Generator().manual_seed(1)
    seqs = [torch.randint(3, 211, (n,), generator=g).tolist() for n in (17, 40, 5)]
    prompts = [s[:6] for s in seqs[:2]] + [[1, 5, 9]]
    for arch in ("llama3", "qwen2", "qwen3"):
        d = os.path.join(WORK, arch)
        model = AutoModelForCausalLM.from_config(tiny_config(arch), attn_implementation="eager")
        with torch.no_grad():  # peaked distributions: greedy decoding without near-ties
            for name, p in model.named_parameters():
                if p.dim() == 2:
                    p.normal_(0, 0.2 if "embed" not in name else 1.0)
                elif name.endswith("bias"):
                    p.normal_(0, 0.1)
        model.save_pretrained(d, safe_serialization=True)
        with open(os.path.join(d, "config.json")) as f:
            cfg_keys = sorted(k for k in json.load(f) if k.startswith("rope"))
        print(json.dumps({"arch": arch, "config_rope_keys": cfg_keys}), flush=True)
        model = model.to(DEV).eval()
        try:
            compare_logprobs(d, model, seqs, "float32", 1e-4, f"{arch}/logprobs_fp32")
            # transformers in bf16 vs selfrl in bf16: both round differently, so the bound is
            # loose; the fp32 check above is the exact one.
            model_bf16 = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16,
                                                              attn_implementation="eager").to(DEV).eval()
            compare_logprobs(d, model_bf16, seqs, "bfloat16", 0.5, f"{arch}/logprobs_bf16")
            del model_bf16
            pf = os.path.join(WORK, "prompts.jsonl")
            with open(pf, "w") as f:
                for p in prompts:
                    f.write(json.dumps({"input_ids": p}) + "\n")
            ours = run_selfrl("generate", "--model", d, "--in", pf, "--device", DEV, "--temperature", "0",
                              "--max-new-tokens", "20")
            same, details = True, []
            for p, o in zip(prompts, ours):
                with torch.no_grad():
                    out = model.generate(torch.tensor([p], device=DEV), do_sample=False, max_new_tokens=20,
                                         eos_token_id=2, pad_token_id=0)
                ref = out[0, len(p):].tolist()
                got = o["completions"][0]["token_ids"]
                same &= ref == got
                details.append({"prompt": p, "transformers": ref, "selfrl": got})
            report(f"{arch}/greedy_generate", same, **({} if same else {"details": details}))
        except Exception as e:  # noqa: BLE001 - report and go on with the other checks
            report(f"{arch}/error", False, error=str(e)[-1500:])
    if EXPORT and os.path.isdir(EXPORT):
        try:
            model = AutoModelForCausalLM.from_pretrained(EXPORT, dtype=torch.float32,
                                                         attn_implementation="eager").to(DEV).eval()
            v = model.config.vocab_size
            compare_logprobs(EXPORT, model, [[t % v for t in s] for s in seqs], "float32", 1e-4,
                             "selfrl_trained_on_gpu/loads_in_transformers")
        except Exception as e:  # noqa: BLE001
            report("selfrl_trained_on_gpu/error", False, error=str(e)[-1500:])
    print(json.dumps({"summary": "hf_parity", "failed": failures}), flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
