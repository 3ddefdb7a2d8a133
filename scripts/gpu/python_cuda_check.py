#!/usr/bin/env python3
"""The selfrl Python package on a CUDA GPU, against transformers (run by scripts/gpu_check.sh
after hf_parity.py has written its tiny transformers-made models into WORK_DIR).

For each model: selfrl.CausalLM.from_pretrained(device="cuda") log-probs vs transformers'
(float32), state_dict() tensors are the CUDA parameters (same data_ptr, an in-place change is
seen by the next forward), greedy RolloutEngine.generate equals transformers' generate(), and a
GRPO step with a Python reward runs on the GPU in bf16 autocast.

  python3 scripts/gpu/python_cuda_check.py WORK_DIR
"""
import json
import os
import sys
import tempfile

import torch
from transformers import AutoModelForCausalLM

import selfrl

WORK = sys.argv[1]
failures = []


def report(check, ok, **info):
    print(json.dumps({"check": check, "ok": bool(ok), **info}), flush=True)
    if not ok:
        failures.append(check)


def main():
    print(json.dumps({"selfrl": selfrl.__version__, "built_against": selfrl._build_info.TORCH_VERSION,
                      "torch": torch.__version__, "cuda_build": selfrl._build_info.CUDA}), flush=True)
    g = torch.Generator().manual_seed(3)
    seq = torch.randint(3, 211, (1, 24), generator=g)
    for arch in ("llama3", "qwen2", "qwen3"):
        d = os.path.join(WORK, arch)
        if not os.path.isdir(d):
            report(f"{arch}/model_dir", False, error=f"{d} missing (hf_parity.py did not run?)")
            continue
        try:
            ours = selfrl.CausalLM.from_pretrained(d, device="cuda", dtype="float32")
            ref = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").cuda().eval()
            ids = seq.cuda()
            with torch.no_grad():
                lp = ours.logprobs(ids)[0]
                logits = ref(ids).logits[0, :-1].float()
                ref_lp = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None])[:, 0]
            diff = (lp - ref_lp).abs().max().item()
            report(f"{arch}/python_logprobs_fp32", diff < 1e-4, max_abs_diff=diff)
            sd = ours.state_dict()
            w = sd["model.norm.weight"]
            same_ptr = w.is_cuda and w.data_ptr() == ours.state_dict()["model.norm.weight"].data_ptr()
            with torch.no_grad():
                w.mul_(2.0)
                changed = (ours.logprobs(ids)[0] - lp).abs().max().item()
                w.div_(2.0)
            report(f"{arch}/state_dict_zero_copy_cuda", same_ptr and changed > 1e-3, changed=changed)
            engine = selfrl.RolloutEngine(ours, eos_token_ids=[2])
            prompt = seq[0, :6].tolist()
            got = engine.generate([prompt], selfrl.SamplingParams(temperature=0.0, max_tokens=16))[0].outputs[0].token_ids
            with torch.no_grad():
                out = ref.generate(torch.tensor([prompt], device="cuda"), do_sample=False, max_new_tokens=16,
                                   eos_token_id=2, pad_token_id=0)
            want = out[0, len(prompt):].tolist()
            report(f"{arch}/python_greedy_generate", got == want, selfrl=got, transformers=want)
        except Exception as e:  # noqa: BLE001
            report(f"{arch}/error", False, error=str(e)[-1500:])
    # A GRPO step with a Python reward, bf16 autocast on the GPU (the model dir has no tokenizer:
    # prompts as input_ids rows).
    try:
        d = os.path.join(WORK, "qwen2")
        rows = [{"input_ids": seq[0, :5 + i].tolist(), "answer": "1"} for i in range(4)]

        def short(prompts, completions, completion_ids, **kwargs):
            return [-len(c) / 16 for c in completion_ids]

        with tempfile.TemporaryDirectory() as tmp:
            import shutil
            m = os.path.join(tmp, "m")
            shutil.copytree(d, m)
            # The trainers read a tokenizer; the tiny models have none: use a byte-level fallback.
            lines = [" ".join(str(t) for t in range(200))] * 10
            print("grpo: training a sentencepiece tokenizer", flush=True)
            spm = selfrl.Tokenizer.train_sentencepiece(lines, os.path.join(tmp, "tok"), vocab_size=100)
            shutil.copyfile(spm, os.path.join(m, "tokenizer.model"))
            print("grpo: trainer", flush=True)
            tr = selfrl.GRPOTrainer(m, [short], args=selfrl.GRPOConfig(
                device="cuda", bf16=True, max_steps=2, num_generations=4, per_device_train_batch_size=8,
                max_completion_length=8, learning_rate=1e-4, output_dir=os.path.join(tmp, "run")), train_dataset=rows)
            print("grpo: step 1", flush=True)
            m1 = tr.step()
            print("grpo: step 2", flush=True)
            m2 = tr.step()
            ok = all(torch.isfinite(torch.tensor([m1["loss"], m2["loss"], m2["grad_norm"]])))
            report("grpo_python_reward_cuda_bf16", ok, loss=[m1["loss"], m2["loss"]],
                   device=tr.model.device, reward=m2["rewards/short/mean"])
    except Exception as e:  # noqa: BLE001
        report("grpo_python_reward_cuda_bf16/error", False, error=str(e)[-1500:])
    print(json.dumps({"summary": "python_cuda_check", "failed": failures}), flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
