#!/usr/bin/python3
"""What the Python layer adds to a GRPO run: `selfrl.train(recipe)` vs `selfrl train recipe`.

Both drive the same C++ run. Fixed costs differ (a process start and LibTorch load for the CLI,
nothing for an in-process call), so the measure is the marginal cost of a step: each driver runs
the recipe with max_steps = SHORT and LONG, and the per-step time is
(T(LONG) - T(SHORT)) / (LONG - SHORT); runs are interleaved, medians over RUNS.

  PYTHONPATH=build/python /usr/bin/python3 benchmarks/python/bench_python_overhead.py build/selfrl [RUNS=5]

Prints one JSON line per measurement and a summary line.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import selfrl

CLI = sys.argv[1] if len(sys.argv) > 1 else "build/selfrl"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
SHORT, LONG = 2, 22


def make_world(root):
    lines = [f"{a} + {b} = {a + b}" for a in range(30) for b in range(30)]
    spm = selfrl.Tokenizer.train_sentencepiece(lines, os.path.join(root, "tok"), vocab_size=300)
    model = os.path.join(root, "model")
    os.makedirs(model)
    shutil.copyfile(spm, os.path.join(model, "tokenizer.model"))
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 300, "hidden_size": 256,
           "intermediate_size": 688, "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 4,
           "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
           "bos_token_id": 1, "eos_token_id": 2}
    selfrl.CausalLM.from_config(cfg, seed=0).save_pretrained(model)
    data = os.path.join(root, "train.jsonl")
    with open(data, "w") as f:
        for a in range(30):
            for b in range(30):
                f.write(json.dumps({"prompt": f"{a} + {b} ="}) + "\n")
    recipe = os.path.join(root, "grpo.yaml")
    with open(recipe, "w") as f:
        f.write(f"trainer: grpo\nmodel: {model}\ndata: {{train: {data}}}\noutput_dir: {root}/out\n"
                "reward_funcs: [consensus, self_certainty]\nnum_generations: 8\nper_device_train_batch_size: 32\n"
                "max_completion_length: 24\ntemperature: 1.0\nlearning_rate: 1.0e-5\nseed: 1\n"
                "overwrite_output_dir: true\nsave_model: false\nreport_to_tensorboard: false\n")
    return recipe


def time_cli(recipe, steps):
    t = time.perf_counter()
    r = subprocess.run([CLI, "train", recipe, f"max_steps={steps}"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return time.perf_counter() - t


def time_python(recipe, steps):
    t = time.perf_counter()
    selfrl.train(recipe, overrides={"max_steps": steps})
    return time.perf_counter() - t


def main():
    selfrl.set_progress("off")
    selfrl.set_log_level("warn")
    root = tempfile.mkdtemp(prefix="selfrl-bench-py-")
    recipe = make_world(root)
    per_step = {"cli": [], "python": []}
    time_python(recipe, 1)  # warm-up (page cache, allocator)
    for run in range(RUNS):
        for driver, fn in (("cli", time_cli), ("python", time_python)):
            short, long_ = fn(recipe, SHORT), fn(recipe, LONG)
            s = (long_ - short) / (LONG - SHORT)
            per_step[driver].append(s)
            print(json.dumps({"run": run, "driver": driver, "t_short": round(short, 3), "t_long": round(long_, 3),
                              "seconds_per_step": round(s, 5)}), flush=True)
    cli, py = statistics.median(per_step["cli"]), statistics.median(per_step["python"])
    print(json.dumps({"summary": "python_overhead", "runs": RUNS, "steps": LONG - SHORT,
                      "cli_seconds_per_step_median": round(cli, 5), "python_seconds_per_step_median": round(py, 5),
                      "python_overhead_percent": round(100 * (py - cli) / cli, 2)}), flush=True)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
