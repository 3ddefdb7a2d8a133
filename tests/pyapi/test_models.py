"""CausalLM, Tokenizer and RolloutEngine from Python, checked against independent computations."""

import os
import sys
import threading
import time

import pytest
import torch

import selfrl

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import hf_reference  # noqa: E402  (float64 forward written from transformers' modeling code)


def test_import_reports_versions():
    assert selfrl.__version__.count(".") == 2
    assert selfrl._build_info.TORCH_VERSION.split(".")[:2] == torch.__version__.split(".")[:2]


def test_load_and_repr(world):
    model = selfrl.CausalLM.from_pretrained(world["model"])
    assert "LlamaForCausalLM" in repr(model) and "float32 on cpu" in repr(model)
    assert model.config["hidden_size"] == 32
    assert model.num_parameters() == sum(t.numel() for t in model.state_dict().values())


def test_logprobs_match_an_independent_float64_forward(world):
    model = selfrl.CausalLM.from_pretrained(world["model"])
    cfg, w = hf_reference.load_model_dir(world["model"])
    ids = [1, 5, 3, 13, 4, 12, 7, 9]
    with torch.no_grad():
        got = model.logprobs(torch.tensor([ids]))[0]
    logits = hf_reference.forward_logits(cfg, w, ids)  # [T, V] float64
    ref = torch.log_softmax(torch.as_tensor(logits), -1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
    assert got.shape == (len(ids) - 1,)
    assert torch.allclose(got.double(), ref, atol=1e-4), (got, ref)
    stats = model.token_stats(torch.tensor([ids]))
    p = torch.softmax(torch.as_tensor(logits[:-1]), -1)
    assert torch.allclose(stats["entropy"][0].double(), -(p * p.log()).sum(-1), atol=1e-4)
    sc = -torch.log(torch.tensor(float(p.shape[-1]), dtype=torch.float64)) - p.log().mean(-1)
    assert torch.allclose(stats["self_certainty"][0].double(), sc, atol=1e-4)


def test_logprobs_carry_gradients(world):
    model = selfrl.CausalLM.from_pretrained(world["model"])
    lp = model.logprobs(torch.tensor([[1, 5, 3, 13]]))
    lp.sum().backward()
    grads = [t.grad for t in model.state_dict().values()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_state_dict_shares_memory_with_the_model(world, tmp_path):
    model = selfrl.CausalLM.from_pretrained(world["model"])
    ids = torch.tensor([[1, 5, 3, 13, 4]])
    with torch.no_grad():
        before = model.logprobs(ids).clone()
        sd = model.state_dict()
        assert sd["model.norm.weight"].data_ptr() == model.state_dict()["model.norm.weight"].data_ptr()
        sd["model.norm.weight"].mul_(3.0)  # written in Python ...
        after = model.logprobs(ids)
    assert not torch.allclose(before, after)  # ... seen by the C++ forward
    model.save_pretrained(tmp_path / "scaled")
    reloaded = selfrl.CausalLM.from_pretrained(tmp_path / "scaled")
    assert torch.equal(reloaded.state_dict()["model.norm.weight"], sd["model.norm.weight"])


def test_tokenizer_round_trip_and_chat(world):
    tok = selfrl.Tokenizer.from_pretrained(world["model"])
    ids = tok.encode("3 + 4 = 7")
    assert ids[0] == tok.bos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == "3 + 4 = 7"
    assert tok("3 + 4")["input_ids"] == tok.encode("3 + 4")
    assert tok(["1", "2"])["input_ids"] == [tok.encode("1"), tok.encode("2")]
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True,
                                   fallback_format="chatml")
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_generate_greedy_is_the_teacher_forced_argmax(world):
    model = selfrl.CausalLM.from_pretrained(world["model"])
    engine = selfrl.RolloutEngine(model)
    out = engine.generate(["1 + 2 =", "3 + 4 ="], selfrl.SamplingParams(temperature=0.0, max_tokens=6, ignore_eos=True))
    assert [len(r.outputs) for r in out] == [1, 1]
    for r in out:
        c = r.outputs[0]
        assert len(c.token_ids) == len(c.logprobs) == len(c.entropy) == len(c.self_certainty) == 6
        assert c.finish_reason == "length"
        full = torch.tensor([r.prompt_token_ids + c.token_ids])
        with torch.no_grad():
            logits = model.logits(full)[0]
            lp = model.logprobs(full)[0]
        n = len(r.prompt_token_ids)
        assert logits[n - 1:-1].argmax(-1).tolist() == c.token_ids  # greedy = argmax, step by step
        assert torch.allclose(lp[n - 1:], torch.tensor(c.logprobs), atol=1e-4)
        assert c.text == engine.tokenizer.decode(c.token_ids, skip_special_tokens=True)


def test_sampling_params_names_and_seeds(world):
    model = selfrl.CausalLM.from_pretrained(world["model"])
    engine = selfrl.RolloutEngine(model)
    a = engine.generate("5 + 5 =", selfrl.SamplingParams(n=4, max_tokens=5, seed=3))
    b = engine.generate("5 + 5 =", selfrl.SamplingParams(num_generations=4, max_completion_length=5, seed=3))
    assert [c.token_ids for c in a[0].outputs] == [c.token_ids for c in b[0].outputs]
    assert [c.index for c in a[0].outputs] == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        selfrl.SamplingParams(n=2, num_samples=2)


def test_continuous_batching_gives_the_same_samples(world):
    model = selfrl.CausalLM.from_pretrained(world["model"])
    prompts = [f"{a} + {b} =" for a, b in [(1, 2), (13, 4), (250, 7), (5, 5), (31, 40), (8, 900)]]
    params = selfrl.SamplingParams(n=4, max_tokens=12, seed=7)
    waves = selfrl.RolloutEngine(model, max_batch_size=8)
    cont = selfrl.RolloutEngine(model, max_batch_size=8, continuous_batching=True)
    a, b = waves.generate(prompts, params), cont.generate(prompts, params)
    assert [[c.token_ids for c in r.outputs] for r in a] == [[c.token_ids for c in r.outputs] for r in b]
    ta, tb = waves.last_timings(), cont.last_timings()
    assert ta["decode_tokens"] == tb["decode_tokens"]
    assert 0 < tb["decode_steps"] <= ta["decode_steps"]  # never more steps than waves
    # The shared prompt cache (waves' default) against a copy of the prompt per sample.
    copies = selfrl.RolloutEngine(model, max_batch_size=8, share_prompt_cache=False).generate(prompts, params)
    assert [[c.token_ids for c in r.outputs] for r in a] == [[c.token_ids for c in r.outputs] for r in copies]
    for ra, rc in zip(a, copies):
        for ca, cc in zip(ra.outputs, rc.outputs):
            assert max(abs(x - y) for x, y in zip(ca.logprobs, cc.logprobs)) < 1e-5
    # Continuous batching shares the prompt cache too: the same samples, a smaller cache.
    cont_copies = selfrl.RolloutEngine(model, max_batch_size=8, continuous_batching=True, share_prompt_cache=False)
    c = cont_copies.generate(prompts, params)
    assert [[x.token_ids for x in r.outputs] for r in c] == [[x.token_ids for x in r.outputs] for r in b]
    for rb, rc in zip(b, c):
        for cb, cc in zip(rb.outputs, rc.outputs):
            assert max(abs(x - y) for x, y in zip(cb.logprobs, cc.logprobs)) < 1e-5
    assert 0 < tb["peak_cache_bytes"] < cont_copies.last_timings()["peak_cache_bytes"]


def test_kv_memory_grows_in_blocks(world):
    # A 100-token budget the completions do not use (every 5th token id stops them): blocks of 2
    # positions hold far less than the whole budget reserved up front, and sample the same tokens.
    model = selfrl.CausalLM.from_pretrained(world["model"])
    prompts = [f"{a} + {b} =" for a, b in [(1, 2), (13, 4), (250, 7), (5, 5)]]
    params = selfrl.SamplingParams(n=4, max_tokens=100, seed=11, stop_token_ids=list(range(0, 256, 5)))
    blocks = selfrl.RolloutEngine(model, max_batch_size=8, kv_block_size=2)
    upfront = selfrl.RolloutEngine(model, max_batch_size=8, kv_block_size=0)
    a, b = blocks.generate(prompts, params), upfront.generate(prompts, params)
    assert [[c.token_ids for c in r.outputs] for r in a] == [[c.token_ids for c in r.outputs] for r in b]
    assert max(len(c.token_ids) for r in a for c in r.outputs) < 100
    assert blocks.last_timings()["peak_cache_bytes"] < upfront.last_timings()["peak_cache_bytes"] / 2
    with pytest.raises(selfrl.Error, match="kv_block_size"):
        selfrl.RolloutEngine(model, kv_block_size=-1)


def test_errors_are_selfrl_errors_with_where_and_hint(tmp_path):
    with pytest.raises(selfrl.Error) as e:
        selfrl.CausalLM.from_pretrained(tmp_path / "nope")
    assert isinstance(e.value, RuntimeError)
    assert "nope" in str(e.value) and e.value.where
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    with pytest.raises(selfrl.Error) as e:
        selfrl.CausalLM.from_pretrained(tmp_path / "bad")
    assert "config.json" in str(e.value)


def test_bad_sampling_params_name_the_field(world):
    engine = selfrl.RolloutEngine(selfrl.CausalLM.from_pretrained(world["model"]))
    with pytest.raises(selfrl.Error, match="top_p"):
        engine.generate("1 =", selfrl.SamplingParams(top_p=1.5))


def test_generate_releases_the_gil(world):
    model = selfrl.CausalLM.from_pretrained(world["model"])
    engine = selfrl.RolloutEngine(model, max_batch_size=256)
    ticks = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    params = selfrl.SamplingParams(n=64, max_tokens=200, ignore_eos=True, seed=1)
    t0 = time.perf_counter()
    engine.generate(["1 + 1 ="] * 4, params)
    alone = time.perf_counter() - t0
    th = threading.Thread(target=count)
    th.start()
    t0 = time.perf_counter()
    engine.generate(["1 + 1 ="] * 4, params)
    took = time.perf_counter() - t0
    stop.set()
    th.join()
    # A thread that needs the GIL every millisecond kept running while generate() ran.
    assert took > 0.2, took
    assert ticks[0] >= 0.3 * took / 0.0011, (ticks[0], took, alone)
