"""No memory growth over thousands of calls."""

import os
import resource
import subprocess
import sys

import selfrl


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_two_thousand_generate_calls_do_not_grow_memory(world):
    model = selfrl.CausalLM.from_pretrained(world["model"])
    engine = selfrl.RolloutEngine(model)
    params = selfrl.SamplingParams(n=2, max_tokens=4, seed=0)
    for _ in range(200):  # warm up allocator caches
        engine.generate(["1 + 2 ="], params)
    start = rss_mb()
    for i in range(2000):
        out = engine.generate(["1 + 2 =", "3 + 3 ="], params, request_seeds=[i, i + 1])
        assert len(out) == 2
    grown = rss_mb() - start
    assert grown < 8.0, f"RSS grew by {grown:.1f} MB over 2000 generate calls"


def test_import_tunes_malloc_unless_the_environment_opts_out():
    env = {k: v for k, v in os.environ.items()
           if k not in ("SELFRL_MALLOC_TUNING", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                        "GLIBC_TUNABLES")}

    def reported(**extra):
        out = subprocess.run([sys.executable, "-c", "import selfrl; print(selfrl.host_allocator)"],
                             env={**env, **extra}, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    assert reported() == "glibc, mmap threshold 256 MiB, trim threshold 1 GiB"
    assert reported(SELFRL_MALLOC_TUNING="0") == "not tuned: SELFRL_MALLOC_TUNING=0"
    assert reported(MALLOC_TRIM_THRESHOLD_="4194304") == "not tuned: MALLOC_TRIM_THRESHOLD_ is set in the environment"


def test_memory_usage_is_this_process():
    u = selfrl.memory_usage()
    assert set(u) == {"cpu_rss_gb", "cpu_peak_rss_gb"}  # no CUDA figures on the CPU
    with open("/proc/self/status") as f:
        status = {l.split(":")[0]: l.split()[1] for l in f if l.startswith(("VmRSS:", "VmHWM:"))}
    assert u["cpu_peak_rss_gb"] >= u["cpu_rss_gb"] > 0.01
    assert abs(u["cpu_peak_rss_gb"] - int(status["VmHWM"]) / 2**20) < 0.05  # KiB -> GiB; read at different times
    assert abs(u["cpu_rss_gb"] - int(status["VmRSS"]) / 2**20) < 0.05
    try:
        selfrl.memory_usage("tpu")
        raise AssertionError("an unknown device must be an error")
    except selfrl.Error as e:
        assert "tpu" in str(e)


def test_decode_attention_switch_gives_the_same_samples(world):
    model = selfrl.CausalLM.from_pretrained(world["model"])
    prompts = [f"{a} + {b} =" for a, b in [(1, 2), (13, 4), (250, 7), (5, 5)]]
    params = selfrl.SamplingParams(n=3, max_tokens=10, seed=3)
    assert selfrl.decode_attention().startswith("on")
    try:
        a = selfrl.RolloutEngine(model).generate(prompts, params)
        selfrl.set_fused_decode_attention(False)
        assert selfrl.decode_attention().startswith("off")
        b = selfrl.RolloutEngine(model).generate(prompts, params)
    finally:
        selfrl.set_fused_decode_attention(True)
    assert [[c.token_ids for c in r.outputs] for r in a] == [[c.token_ids for c in r.outputs] for r in b]
    for ra, rb in zip(a, b):
        for ca, cb in zip(ra.outputs, rb.outputs):
            assert max(abs(x - y) for x, y in zip(ca.logprobs, cb.logprobs)) < 1e-5
