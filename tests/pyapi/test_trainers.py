"""Configs, trainers, loops, evaluation and plots from Python."""

import json
import os

import pytest
import torch

import selfrl


def test_config_rejects_unknown_keys_with_did_you_mean():
    with pytest.raises(selfrl.Error) as e:
        selfrl.GRPOConfig(num_generation=4)
    assert "did you mean 'num_generations'" in str(e.value) and e.value.where == "num_generation"
    with pytest.raises(selfrl.Error, match="unknown key for sft"):
        selfrl.SFTConfig(num_generations=4)  # a GRPO key is not an SFT key
    with pytest.raises(selfrl.Error, match="trainer's arguments"):
        selfrl.GRPOConfig(model="x")


def test_config_fields_are_recipe_keys():
    c = selfrl.GRPOConfig(learning_rate=1e-5, beta=0.04, eval={"samples": 4})
    assert c.learning_rate == 1e-5 and c.num_generations == 8  # set, and the recipe default
    assert c.to_dict() == {"learning_rate": 1e-5, "beta": 0.04, "eval.samples": 4}
    assert "num_generations" in selfrl.GRPOConfig.keys() and "star.num_samples" not in selfrl.GRPOConfig.keys()
    loop = selfrl.LoopConfig("star", **{"star.num_samples": 2}, iterations=1)
    assert loop.star == {"num_samples": 2}
    assert "LoopConfig('star'" in repr(loop)


def test_out_of_range_value_names_the_key(world, tmp_path):
    trainer = selfrl.GRPOTrainer(world["model"], "consensus", args=selfrl.GRPOConfig(beta=-1.0),
                                 train_dataset=world["train_rows"])
    with pytest.raises(selfrl.Error, match="beta"):
        trainer.step()


def test_empty_dataset_is_a_clear_error(world):
    with pytest.raises(selfrl.Error, match="train_dataset is empty"):
        selfrl.GRPOTrainer(world["model"], "consensus", train_dataset=[])


def test_sft_trainer_lowers_the_loss_and_saves(world, tmp_path):
    trainer = selfrl.SFTTrainer(world["model"], args=selfrl.SFTConfig(
        num_train_epochs=20, learning_rate=3e-3, per_device_train_batch_size=8, output_dir=str(tmp_path / "sft"),
        lr_scheduler_type="constant"), train_dataset=world["sft"])
    out = trainer.train()
    losses = [l["loss"] for l in trainer.state.log_history if l["kind"] == "sft"]
    assert len(losses) == 40 and losses[-1] < 0.5 * losses[0]
    assert out.global_step == 40 and os.path.exists(os.path.join(out.final_model_dir, "tokenizer.model"))
    assert os.path.exists(out.metrics_path)
    # The trainer's model is the trained one, in memory and on disk.
    final = selfrl.CausalLM.from_pretrained(out.final_model_dir)
    for k, v in final.state_dict().items():
        assert torch.equal(v, trainer.model.state_dict()[k]), k


def test_trainer_trains_the_given_model_in_place(world):
    model = selfrl.CausalLM.from_pretrained(world["model"])
    w0 = model.state_dict()["lm_head.weight"].clone()
    trainer = selfrl.GRPOTrainer(model, ["self_certainty"], args=selfrl.GRPOConfig(
        max_steps=1, num_generations=4, per_device_train_batch_size=8, max_completion_length=6, learning_rate=1e-2),
        train_dataset=world["train_rows"])
    trainer.step()
    assert trainer.model is model
    assert not torch.equal(w0, model.state_dict()["lm_head.weight"])


def test_dpo_trainer_grows_the_margin(world, tmp_path):
    trainer = selfrl.DPOTrainer(world["model"], args=selfrl.DPOConfig(
        max_steps=1, num_train_epochs=6, learning_rate=5e-3, per_device_train_batch_size=8,
        output_dir=str(tmp_path / "dpo")), train_dataset=world["dpo"])
    trainer.train()
    margins = [l["rewards/margins"] for l in trainer.log_history if l["kind"] == "dpo"]
    assert margins and margins[-1] > margins[0]


def test_grpo_steps_then_train_continues_and_checkpoints_resume(world, tmp_path):
    args = dict(max_steps=3, num_generations=4, per_device_train_batch_size=8, max_completion_length=6,
                output_dir=str(tmp_path / "g"), save_steps=1, seed=9)
    a = selfrl.GRPOTrainer(world["model"], "consensus", args=selfrl.GRPOConfig(**args), train_dataset=world["train"],
                           eval_dataset=world["eval"])
    first = a.step()
    out = a.train()
    grpo = [l for l in a.log_history if l["kind"] == "grpo"]
    assert [l["step"] for l in grpo] == [1, 2, 3] and out.global_step == 3 and first["reward"] == grpo[0]["reward"]
    assert [l["iteration"] for l in a.log_history if l["kind"] == "iteration"] == [0, 1]
    # Memory of every step (perf/*), this process's: resident now and its high-water mark (the
    # kernel refreshes the mark lazily, hence the 20 MiB slack against a later reading).
    assert all(0 < l["perf/cpu_memory_rss_gb"] <= l["perf/cpu_memory_peak_rss_gb"] for l in grpo)
    assert max(l["perf/cpu_memory_peak_rss_gb"] for l in grpo) <= selfrl.memory_usage()["cpu_peak_rss_gb"] + 0.02
    names = sorted(n for n in os.listdir(tmp_path / "g") if not n.startswith("."))  # not .selfrl.lock
    assert names[:3] == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]
    # An uninterrupted run from scratch ends with the same weights.
    b = selfrl.GRPOTrainer(world["model"], "consensus", args=selfrl.GRPOConfig(**{**args, "output_dir": str(tmp_path / "h")}),
                           train_dataset=world["train"], eval_dataset=world["eval"])
    b.train()
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    # Resuming from checkpoint-2 also ends there.
    c = selfrl.GRPOTrainer(world["model"], "consensus", args=selfrl.GRPOConfig(**{**args, "output_dir": str(tmp_path / "h"),
                                                                                   "overwrite_output_dir": False}),
                           train_dataset=world["train"], eval_dataset=world["eval"])
    c.train(resume_from_checkpoint=str(tmp_path / "h" / "checkpoint-2"))
    for k, v in c.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k


def test_loops_run_and_step_is_for_grpo_only(world, tmp_path):
    star = selfrl.STaR(world["model"], train_dataset=world["train"], eval_dataset=world["eval"], iterations=1,
                       max_completion_length=6, output_dir=str(tmp_path / "star"), **{"star.num_samples": 2})
    with pytest.raises(selfrl.Error, match="train()"):
        star.step()
    out = star.train()
    iters = [l for l in star.log_history if l["kind"] == "iteration"]
    assert [l["iteration"] for l in iters] == [0, 1] and "eval/accuracy" in iters[-1]
    assert out.final_model_dir
    sec = selfrl.SEC(world["model"], train_dataset=world["train"], reward_funcs="consensus", max_steps=2,
                     num_generations=4, per_device_train_batch_size=8, max_completion_length=6,
                     output_dir=str(tmp_path / "sec"), data={"category_field": "difficulty"})
    m = sec.step()
    assert any(k.startswith("sec/q/") for k in m)


def test_evaluate_reports_accuracy_maj_and_pass_at_k(world):
    model = selfrl.CausalLM.from_pretrained(world["model"])
    r = selfrl.evaluate(model, world["eval_rows"], samples=4, max_new_tokens=6, per_example=True)
    assert r["num_examples"] == 4 and {"accuracy", "maj@4", "pass@4"} <= set(r)
    assert r["accuracy"] == sum(e["greedy_correct"] for e in r["examples"]) / 4


def test_plot_metrics_returns_a_figure(world, tmp_path):
    trainer = selfrl.GRPOTrainer(world["model"], "self_certainty", args=selfrl.GRPOConfig(
        max_steps=2, num_generations=4, per_device_train_batch_size=8, max_completion_length=6,
        output_dir=str(tmp_path / "p")), train_dataset=world["train_rows"])
    out = trainer.train()
    import matplotlib.figure
    for source in (trainer, out, str(tmp_path / "p"), out.metrics_path):
        fig = selfrl.plot_metrics(source)
        assert isinstance(fig, matplotlib.figure.Figure)
        assert [ax.get_title() for ax in fig.axes] == ["reward", "loss"]
        assert len(fig.axes[0].lines[0].get_xdata()) == 2


def no_digits(prompts, completions, completion_ids, **kwargs):
    """1 for a completion without a digit: the answer extractor finds nothing in it."""
    return [0.0 if any(ch.isdigit() for ch in c) else 1.0 for c in completions]


def test_collapse_guard_stops_a_run_whose_answers_vanish(world, tmp_path):
    # A reward for digit-free completions drives label_free/no_answer_rate up within a few steps
    # (the degenerate optimum a label-free reward can reach); the guard stops the run there.
    guard = {"action": "stop", "warmup_steps": 2, "window": 2, "patience": 2, "entropy_rise": 0,
             "no_answer_rise": 0.15}
    args = selfrl.GRPOConfig(max_steps=16, num_generations=4, per_device_train_batch_size=16,
                             max_completion_length=6, learning_rate=5e-2, lr_scheduler_type="constant",
                             output_dir=str(tmp_path / "g"), seed=5, collapse_guard=guard)
    assert args.to_dict()["collapse_guard.action"] == "stop"
    t = selfrl.GRPOTrainer(world["model"], no_digits, args=args, train_dataset=world["train"])
    with pytest.raises(selfrl.CollapseStopped) as e:
        t.train()
    grpo = [l for l in t.log_history if l["kind"] == "grpo"]
    assert grpo[-1]["collapse_guard/streak"] == 2 and len(grpo) < 16
    assert grpo[-1]["label_free/no_answer_rate"] > grpo[0]["label_free/no_answer_rate"]
    assert "no_answer_rate rose" in str(e.value) and "collapse_guard" in e.value.hint + str(e.value)
    assert e.value.checkpoint_dir.endswith(f"checkpoint-{grpo[-1]['step']}")
    assert os.path.exists(os.path.join(e.value.checkpoint_dir, "COMPLETE"))
    # The same guard replayed on the run's own log fires at the step the run stopped.
    replay = selfrl.replay_collapse_guard(t.log_history, **guard)
    assert replay["fired_at_step"] == len(grpo) and "no_answer_rate rose" in replay["reason"]
    assert selfrl.replay_collapse_guard(t.log_history, **{**guard, "no_answer_rise": 0})["fired_at_step"] is None


def test_collapse_guard_by_hand_and_on_a_recorded_slow_collapse():
    # As CollapseGuard.AnsweredAgreementCatchesALossThatFewerUnansweredSamplesHide: the majority holds
    # 0.6 / 0.65 = 0.923 of the answered samples at the baseline, 0.75 / 0.95 = 0.789 later, while
    # majority_share itself rose; entropy 1.5x.
    def step(entropy, share, no_answer):
        return {"entropy": entropy, "label_free/majority_share": share, "label_free/no_answer_rate": no_answer,
                "kind": "grpo"}
    g = selfrl.CollapseGuard(warmup_steps=2, window=1, patience=2)
    assert g.settings["answered_agreement_drop"] == 0.06 and g.settings["patience"] == 2
    verdicts = [g.observe(step(0.1, 0.6, 0.35)) for _ in range(2)] + [g.observe(step(0.15, 0.75, 0.05))
                                                                      for _ in range(2)]
    assert [v.flagged for v in verdicts] == [False, False, True, True]
    assert [v.fired for v in verdicts] == [False, False, False, True] and g.fired and g.first_bad_step == 3
    assert "answered samples fell from 0.923 to 0.789" in verdicts[2].reason
    off = selfrl.CollapseGuard(warmup_steps=2, window=1, patience=2, answered_agreement_drop=0)
    assert not any(off.observe(m).flagged for m in [step(0.1, 0.6, 0.35)] * 2 + [step(0.15, 0.75, 0.05)] * 2)
    # The demo's slow self-certainty collapse (2e-5, 2 BLAS threads, seed 0; docs/demo.md): step 77
    # of 80, and never without the answered-agreement measure.
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "data", "collapse_guard", "runs80.jsonl")) as f:
        run = next(r for r in map(json.loads, f) if r["name"] == "certainty_2e-5_2t_s0")
    rows = [{k: v[i] for k, v in run["signals"].items() if v[i] is not None} for i in range(80)]
    r = selfrl.replay_collapse_guard(rows)
    assert (r["fired_at_step"], r["first_flagged_step"], r["steps"]) == (77, 75, 80)
    assert selfrl.replay_collapse_guard(rows, answered_agreement_drop=0)["fired_at_step"] is None
    with pytest.raises(selfrl.Error, match="did you mean 'collapse_guard.patience'"):
        selfrl.CollapseGuard(patienc=2)
    with pytest.raises(selfrl.Error, match="collapse_guard.patience.*out of range"):
        selfrl.CollapseGuard(patience=0)


def test_nft_loop_trains_on_right_and_wrong_samples(world, tmp_path):
    # Right = no digit (about a quarter of the tiny model's samples at first); seeds 1-10 all
    # rise to 0.69-0.94 by the third iteration.
    nft = selfrl.NFT(world["model"], train_dataset=world["train"], reward_funcs=no_digits, iterations=3,
                     max_completion_length=4, learning_rate=1e-2, lr_scheduler_type="constant", seed=4,
                     num_train_epochs=2, output_dir=str(tmp_path / "nft"), nft={"num_samples": 6})
    nft.train()
    iters = [l for l in nft.log_history if l["kind"] == "iteration" and l["iteration"] >= 1]
    assert len(iters) == 3 and iters[0]["kept"] > 0
    assert abs(iters[0]["sft/loss_first"]) < 1e-5  # on-policy: every token's loss is -log 1
    assert iters[2]["nft/accuracy"] > iters[0]["nft/accuracy"]
