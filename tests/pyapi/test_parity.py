"""A GRPO run driven from Python equals the same run of the `selfrl train` program: the same
logged losses and rewards and the same final weights, bit for bit."""

import json
import os

import torch

import selfrl
from conftest import run_cli

VOLATILE = ("time/", "tokens_per_second", "perf/")


def recipe(world, tmp_path, out, rewards="reward_funcs: [consensus, self_certainty]\nreward_weights: [1.0, 0.5]\n"):
    path = tmp_path / f"{out}.yaml"
    path.write_text(
        f"trainer: grpo\nmodel: {world['model']}\noutput_dir: {tmp_path / out}\n"
        f"data: {{train: {world['train']}, eval: {world['eval']}}}\n"
        + rewards +
        "num_generations: 4\nper_device_train_batch_size: 8\nmax_completion_length: 8\nmax_steps: 3\n"
        "learning_rate: 1.0e-3\nbeta: 0.02\nseed: 11\ntemperature: 1.0\n")
    return path


def lines(path):
    out = []
    for l in open(path):
        j = json.loads(l)
        out.append({k: v for k, v in j.items() if not k.startswith(VOLATILE)})
    return out


def weights(d):
    return selfrl.CausalLM.from_pretrained(d).state_dict()


def test_python_run_equals_cli_run(world, tmp_path):
    cli = run_cli("train", str(recipe(world, tmp_path, "cli")))
    assert cli.returncode == 0, cli.stdout + cli.stderr

    # selfrl.train on the same recipe file, in this process.
    out = selfrl.train(recipe(world, tmp_path, "py"))
    # And the TRL-style trainer with the same keys, stepped one step at a time.
    trainer = selfrl.GRPOTrainer(world["model"], ["consensus", "self_certainty"], args=selfrl.GRPOConfig(
        output_dir=str(tmp_path / "trl"), reward_weights=[1.0, 0.5], num_generations=4, per_device_train_batch_size=8,
        max_completion_length=8, max_steps=3, learning_rate=1e-3, beta=0.02, seed=11, temperature=1.0),
        train_dataset=world["train"], eval_dataset=world["eval"])
    stepped = [trainer.step() for _ in range(3)]
    trainer.train()  # the final evaluation and model

    ref = lines(tmp_path / "cli" / "metrics.jsonl")
    assert len([l for l in ref if l["kind"] == "grpo"]) == 3
    assert lines(out.metrics_path) == ref
    assert lines(tmp_path / "trl" / "metrics.jsonl") == ref
    grpo = [l for l in ref if l["kind"] == "grpo"]
    for s, l in zip(stepped, grpo):
        assert s["loss"] == l["loss"] and s["reward"] == l["reward"] and s["kl"] == l["kl"]
    w = weights(tmp_path / "cli" / "final")
    for other in (tmp_path / "py" / "final", tmp_path / "trl" / "final"):
        for k, v in weights(other).items():
            assert torch.equal(v, w[k]), (other, k)


def test_python_reward_equals_the_builtin_it_reimplements(world, tmp_path):
    """A Python length penalty gives the run the C++ length_penalty gives (same floats)."""
    cli = run_cli("train", str(recipe(world, tmp_path, "c", "reward_funcs: [length_penalty]\n")))
    assert cli.returncode == 0, cli.stderr

    def my_length_penalty(prompts, completions, completion_ids, **kwargs):
        return [-len(ids) / 8 for ids in completion_ids]

    trainer = selfrl.GRPOTrainer(world["model"], [my_length_penalty], args=selfrl.GRPOConfig(
        output_dir=str(tmp_path / "p"), num_generations=4, per_device_train_batch_size=8, max_completion_length=8,
        max_steps=3, learning_rate=1e-3, beta=0.02, seed=11), train_dataset=world["train"],
        eval_dataset=world["eval"])
    trainer.train()
    ref = [l for l in lines(tmp_path / "c" / "metrics.jsonl") if l["kind"] == "grpo"]
    got = [l for l in lines(tmp_path / "p" / "metrics.jsonl") if l["kind"] == "grpo"]
    for a, b in zip(ref, got):
        assert a["loss"] == b["loss"] and a["reward"] == b["reward"]
        assert a["rewards/length_penalty/mean"] == b["rewards/my_length_penalty/mean"]
    w = weights(tmp_path / "c" / "final")
    for k, v in weights(tmp_path / "p" / "final").items():
        assert torch.equal(v, w[k]), k
