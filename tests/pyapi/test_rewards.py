"""Rewards from Python: built-ins by name, TRL-signature functions, the registry, and the policy
for functions that misbehave."""

import glob
import json
import math
import os

import pytest

import selfrl


def test_builtin_consensus_by_name_matches_hand_values():
    r = selfrl.make_reward("consensus")
    scores, info = r.score_group("q", ["so 4", "4", "5", "no answer"])
    assert scores == [1.0, 1.0, 0.0, 0.0]
    assert info["majority"] == "4" and info["vote_share"] == 0.5
    # The same group under a confidence filter: a majority of 2 of 4 is below 0.75 -> all 0.
    strict = selfrl.make_reward("consensus", consensus_min_vote_share=0.75)
    scores, info = strict.score_group("q", ["so 4", "4", "5", "no answer"])
    assert scores == [0.0, 0.0, 0.0, 0.0] and info["below_min_vote_share"] is True


def test_builtin_self_certainty_is_the_mean_per_token_value():
    r = selfrl.make_reward("self_certainty")
    scores, _ = r.score_group("q", ["a", "b", ""], completion_ids=[[1, 2], [3], []],
                              self_certainty=[[0.5, 1.5], [2.0], []])
    assert scores[:2] == [1.0, 2.0] and scores[2] is None  # empty completion: unscorable


def test_unknown_reward_names_the_known_ones():
    with pytest.raises(selfrl.Error) as e:
        selfrl.make_reward("self_certanty")
    assert "did you mean 'self_certainty'" in str(e.value) and "consensus" in str(e.value)


def _grpo(world, tmp_path, reward_funcs, **kw):
    args = dict(max_steps=1, num_generations=4, per_device_train_batch_size=8, max_completion_length=6,
                output_dir=str(tmp_path / "run"), dump_rollouts_steps=1, seed=5)
    args.update(kw)
    return selfrl.GRPOTrainer(world["model"], reward_funcs, args=selfrl.GRPOConfig(**args),
                              train_dataset=world["train_rows"])


def test_python_reward_sees_the_exact_completions_and_columns(world, tmp_path):
    calls = []

    def recorder(prompts, completions, completion_ids, **kwargs):
        calls.append((list(prompts), list(completions), [list(c) for c in completion_ids], dict(kwargs)))
        return [float(len(c)) for c in completion_ids]

    trainer = _grpo(world, tmp_path, [recorder])
    m = trainer.step()
    dumped = [json.loads(l) for f in sorted(glob.glob(str(tmp_path / "run/rollouts/*.jsonl"))) for l in open(f)]
    assert len(calls) == 2 and len(dumped) == 8  # two prompts x four generations
    seen = [(p, c, i) for prompts, comps, ids, _ in calls for p, c, i in zip(prompts, comps, ids)]
    assert seen == [(d["prompt"], d["completion"], d["completion_ids"]) for d in dumped]
    rows = {r["prompt"]: r for r in world["train_rows"]}
    for prompts, _, _, kwargs in calls:
        row = rows[prompts[0]]
        assert set(prompts) == {prompts[0]} and len(prompts) == 4
        assert kwargs == {"answer": [row["answer"]] * 4, "difficulty": [row["difficulty"]] * 4}
    assert [d["rewards"]["recorder"] for d in dumped] == [float(len(d["completion_ids"])) for d in dumped]
    assert m["rewards/recorder/mean"] == pytest.approx(sum(len(d["completion_ids"]) for d in dumped) / 8)


@pytest.mark.parametrize("bad, needle", [
    (lambda p, c, i, **k: 1 / 0, "raised ZeroDivisionError"),
    (lambda p, c, i, **k: [1.0] * (len(c) - 1), "returned 3 values for 4 completions"),
    (lambda p, c, i, **k: ["x"] * len(c), "not a number"),
    (lambda p, c, i, **k: 0.5, "not a list of 4 scores"),
])
def test_misbehaving_python_reward_is_reported_and_unscorable(world, tmp_path, capfd, bad, needle):
    def broken(prompts, completions, completion_ids, **kwargs):
        return bad(prompts, completions, completion_ids, **kwargs)

    trainer = _grpo(world, tmp_path, [broken, "self_certainty"])
    m = trainer.step()
    err = capfd.readouterr().err
    assert "reward 'broken'" in err and needle in err and "step 1" in err, err
    assert m["rewards/broken/unscorable"] == 8.0  # every sample of both groups
    assert math.isfinite(m["loss"])  # the other reward still trains


def test_none_marks_a_sample_unscorable(world, tmp_path):
    def half(prompts, completions, completion_ids, **kwargs):
        return [None if i % 2 else 1.0 for i in range(len(completions))]

    m = _grpo(world, tmp_path, [half]).step()
    assert m["rewards/half/unscorable"] == 4.0


def test_vote_prompt_field_brings_a_paraphrase_into_the_vote(world, tmp_path):
    # data.vote_prompt_field from a trainer, through the loop: the rows with a paraphrase get G
    # samples of it in their consensus / borda vote (info "num_vote_samples"), the others none;
    # only the group's own G samples are trained on and dumped.
    rows = [dict(r, vote=r["prompt"].replace(" + ", "+")) if i % 2 == 0 else dict(r)
            for i, r in enumerate(world["train_rows"])]
    trainer = selfrl.GRPOTrainer(
        world["model"], ["consensus", "borda"],
        args=selfrl.GRPOConfig(max_steps=1, num_generations=4, per_device_train_batch_size=16,
                               max_completion_length=6, output_dir=str(tmp_path / "run"), dump_rollouts_steps=1,
                               seed=5, data={"vote_prompt_field": "vote"}),
        train_dataset=rows)
    trainer.step()
    dumped = [json.loads(l) for f in sorted(glob.glob(str(tmp_path / "run/rollouts/*.jsonl"))) for l in open(f)]
    assert len(dumped) == 16  # four prompts x four generations: the vote samples are not dumped
    voted = {r["prompt"] for r in rows if "vote" in r}
    assert {d["prompt"] for d in dumped} & voted and {d["prompt"] for d in dumped} - voted
    for d in dumped:
        for name in ("consensus", "borda"):
            info = d["group_info"][name]
            if d["prompt"] in voted:
                assert info["num_vote_samples"] == 4, (d["prompt"], info)
            else:
                assert "num_vote_samples" not in info, (d["prompt"], info)
    with pytest.raises(selfrl.Error, match="vote"):
        bad = [dict(r, vote=3) for r in world["train_rows"]]
        selfrl.GRPOTrainer(world["model"], ["consensus"],
                           args=selfrl.GRPOConfig(max_steps=1, num_generations=4, output_dir=str(tmp_path / "bad"),
                                                  data={"vote_prompt_field": "vote"}),
                           train_dataset=bad).step()


def test_registered_python_reward_runs_from_a_recipe(world, tmp_path):
    def brevity(prompts, completions, completion_ids, **kwargs):
        """minus the completion length"""
        return [-float(len(i)) for i in completion_ids]

    selfrl.register_reward("brevity_test", brevity)
    try:
        assert ("brevity_test", "minus the completion length", False) in selfrl.registered_rewards()
        recipe = tmp_path / "r.yaml"
        recipe.write_text(f"trainer: grpo\nmodel: {world['model']}\noutput_dir: {tmp_path / 'out'}\n"
                          f"data: {{train: {world['train']}}}\nreward_funcs: [brevity_test]\nmax_steps: 2\n"
                          f"num_generations: 4\nper_device_train_batch_size: 8\nmax_completion_length: 6\n")
        out = selfrl.train(recipe)
        steps = [l for l in out.log_history if l["kind"] == "grpo"]
        assert len(steps) == 2 and all(l["rewards/brevity_test/mean"] <= 0 for l in steps)
        assert os.path.isdir(out.final_model_dir)
    finally:
        assert selfrl.unregister_reward("brevity_test")
    with pytest.raises(selfrl.Error, match="unknown reward 'brevity_test'"):
        selfrl.check_recipe(recipe)


def test_a_python_function_cannot_take_a_builtin_name(world, tmp_path):
    def consensus(prompts, completions, completion_ids, **kwargs):
        return [0.0] * len(completions)

    with pytest.raises(ValueError, match="built-in"):
        _grpo(world, tmp_path, [consensus])


def test_a_configured_builtin_reward_object_trains_under_its_own_name(world, tmp_path):
    boxed = selfrl.make_reward("verifier", answer_extractor="last_number", answer_field="answer")
    trainer = _grpo(world, tmp_path, [boxed, "consensus"])
    assert trainer.reward_names[0].startswith("verifier_")  # registered under a name of its own
    m = trainer.step()
    assert 0.0 <= m["rewards/verifier/mean"] <= 1.0 and m["rewards/verifier/unscorable"] == 0.0
