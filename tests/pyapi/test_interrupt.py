"""Ctrl-C during train(): the run stops at the next step boundary, leaves a checkpoint of that
step, raises KeyboardInterrupt, and resuming from it ends where an uninterrupted run ends."""

import os
import signal
import time

import pytest
import torch

import selfrl

def make(world, out, reward):
    return selfrl.GRPOTrainer(world["model"], [reward], args=selfrl.GRPOConfig(
        output_dir=str(out), max_steps=4, num_generations=4, per_device_train_batch_size=8, max_completion_length=6,
        learning_rate=1e-3, save_steps=10, seed=3), train_dataset=world["train"])


def test_ctrl_c_stops_at_a_step_boundary_with_a_checkpoint(world, tmp_path):
    calls = {"n": 0}

    def ctrl_c_in_step_2(prompts, completions, completion_ids, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the first of step 2's two groups
            os.kill(os.getpid(), signal.SIGINT)  # what a terminal / Jupyter does on Ctrl-C
            time.sleep(0.3)  # the main thread notices while the step is still running
        return [-len(ids) / 8 for ids in completion_ids]

    ctrl_c_in_step_2.__name__ = "length"
    trainer = make(world, tmp_path / "run", ctrl_c_in_step_2)
    with pytest.raises(KeyboardInterrupt) as e:
        trainer.train()
    assert "after step 2" in str(e.value) and "checkpoint-2" in str(e.value)
    assert [l["step"] for l in trainer.log_history if l["kind"] == "grpo"] == [1, 2]
    assert os.path.exists(tmp_path / "run" / "checkpoint-2" / "COMPLETE")

    def length(prompts, completions, completion_ids, **kwargs):
        return [-len(ids) / 8 for ids in completion_ids]

    resumed = make(world, tmp_path / "run", length)
    out = resumed.train(resume_from_checkpoint=True)
    assert out.global_step == 4
    straight = make(world, tmp_path / "straight", length)
    straight.train()
    for k, v in straight.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_ctrl_c_during_step_raises_after_the_step(world, tmp_path):
    def sigint(prompts, completions, completion_ids, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        return [0.0] * len(completions)

    trainer = make(world, tmp_path / "s", sigint)
    with pytest.raises(KeyboardInterrupt, match="after step 1"):
        trainer.step()
    assert trainer.state.global_step == 1
