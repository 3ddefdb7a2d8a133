"""`selfrl train` under a scheduler's preemption signals: SIGTERM / SIGUSR1 / Ctrl-C stop the run
at the next step boundary with a checkpoint of that step; resuming ends bit-identical to an
uninterrupted run; a second signal kills at once."""

import json
import os
import signal
import subprocess
import time

import pytest
import torch

import selfrl
from conftest import selfrl_cli


def recipe(world, tmp_path, steps, generations=4, length=6):
    p = tmp_path / "grpo.yaml"
    p.write_text(f"trainer: grpo\nmodel: {world['model']}\ndata: {{train: {world['train']}}}\n"
                 f"reward_funcs: [consensus, self_certainty]\nnum_generations: {generations}\n"
                 f"per_device_train_batch_size: {2 * generations}\nmax_completion_length: {length}\n"
                 f"max_steps: {steps}\nlearning_rate: 1.0e-3\nseed: 2\nsave_steps: 1000\nreport_to_tensorboard: false\n")
    return str(p)


def grpo_lines(out):
    path = os.path.join(out, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip() and '"kind":"grpo"' in l.replace(" ", "")]


def start(args, env_extra=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", **(env_extra or {}))
    return subprocess.Popen([selfrl_cli(), "train", *args, "--no-progress"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def wait_for_steps(proc, out, n, timeout=60):
    t = time.time()
    while len(grpo_lines(out)) < n:
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() - t < timeout
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_stops_at_a_step_with_a_checkpoint_and_resume_is_bit_identical(world, tmp_path, sig):
    r = recipe(world, tmp_path, 300)
    out = str(tmp_path / "run")
    proc = start([r, f"output_dir={out}"])
    wait_for_steps(proc, out, 3)
    proc.send_signal(sig)
    text, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, text
    steps = len(grpo_lines(out))
    assert 3 <= steps < 300, text
    ckpt = os.path.join(out, f"checkpoint-{steps}")
    assert os.path.exists(os.path.join(ckpt, "COMPLETE")), text
    assert f"after step {steps}" in text and "resume_from_checkpoint=auto" in text, text
    assert not os.path.exists(os.path.join(out, "final"))

    resumed = subprocess.run([selfrl_cli(), "train", r, f"output_dir={out}", "resume_from_checkpoint=auto",
                              "--no-progress"], capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert resumed.returncode == 0, resumed.stderr
    straight = subprocess.run([selfrl_cli(), "train", r, f"output_dir={tmp_path / 'straight'}", "--no-progress"],
                              capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert straight.returncode == 0, straight.stderr
    a = selfrl.CausalLM.from_pretrained(os.path.join(out, "final")).state_dict()
    b = selfrl.CausalLM.from_pretrained(str(tmp_path / "straight" / "final")).state_dict()
    for k in b:
        assert torch.equal(a[k], b[k]), k


def test_a_second_signal_kills_at_once(world, tmp_path):
    out = str(tmp_path / "run")
    # Long steps (64 completions of up to 400 tokens), so that the first signal is still waiting
    # for its step boundary when the second arrives.
    proc = start([recipe(world, tmp_path, 100000, generations=32, length=400), f"output_dir={out}"])
    wait_for_steps(proc, out, 1)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)  # two signals at once would coalesce into one
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM  # killed by the signal itself
