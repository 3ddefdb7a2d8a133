"""libselfrl from Python: language models that improve themselves, on a C++ engine.

The heavy steps (loading, generation, training, evaluation) run in C++ with the GIL released;
tensors cross as ``torch.Tensor`` sharing memory with the engine. Names follow Hugging Face
TRL wherever TRL has the concept::

    import selfrl

    model = selfrl.CausalLM.from_pretrained("runs/demo/base")
    def brevity(prompts, completions, completion_ids, **kwargs):
        return [-len(c) / 100 for c in completions]

    trainer = selfrl.GRPOTrainer(model=model, reward_funcs=[brevity, "self_certainty"],
                                 args=selfrl.GRPOConfig(max_steps=4, num_generations=4),
                                 train_dataset=[{"prompt": "1 + 2 ="}, {"prompt": "3 + 4 ="}])
    trainer.train()

See docs/python.md.
"""

from __future__ import annotations

import re as _re

try:
    import torch as _torch  # loads LibTorch and torch's tensor types before the extension
except ImportError as _e:  # pragma: no cover - depends on the machine
    raise ImportError(
        "selfrl needs PyTorch (the torch module) of the LibTorch it was built against; on Debian "
        "install python3-torch (scripts/setup.sh does) and use /usr/bin/python3"
    ) from _e

from . import _build_info
from .errors import CollapseStopped, Error


def _version_tuple(v: str) -> tuple:
    m = _re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", v)
    return tuple(int(x or 0) for x in m.groups()) if m else ()


def _check_torch() -> None:
    built, have = _build_info.TORCH_VERSION, _torch.__version__
    if _version_tuple(built) and _version_tuple(built)[:2] != _version_tuple(have)[:2]:
        raise ImportError(
            f"selfrl was built against LibTorch {built} but this Python imports torch {have} "
            f"(from {_torch.__file__}). Use the python3 whose torch matches (Debian: /usr/bin/python3 "
            f"with python3-torch), or rebuild libselfrl against this torch (docs/python.md)."
        )
    if _build_info.CUDA and not getattr(_torch.version, "cuda", None):
        raise ImportError(f"selfrl was built with CUDA but torch {have} has no CUDA support")


_check_torch()


try:
    from . import _selfrl
except ImportError as _e:
    raise ImportError(
        f"the selfrl extension could not be loaded ({_e}); it was built against LibTorch "
        f"{_build_info.TORCH_VERSION}, torch here is {_torch.__version__} from {_torch.__file__}"
    ) from _e

__version__: str = _selfrl.__version__
#: How the import set up glibc's malloc for tensor-sized blocks (docs/benchmarks.md, "The host
#: allocator"); SELFRL_MALLOC_TUNING=0 in the environment before the import keeps the defaults.
host_allocator: str = _selfrl.host_allocator


def decode_attention() -> str:
    """Whether decode steps on the CPU compute attention with selfrl's vector loops over the KV
    cache ("on, AVX2 loops") or with torch matmul ("off ..."); docs/model.md, "Decode attention
    on the CPU". SELFRL_FUSED_ATTENTION=0 in the environment turns them off."""
    return _selfrl.decode_attention()


def set_fused_decode_attention(on: bool) -> None:
    """Turns the CPU decode-attention loops on or off for the whole process (to compare the
    two paths: same tokens, statistics within float32 rounding)."""
    _selfrl.set_fused_decode_attention(bool(on))


def memory_usage(device: str = "cpu") -> dict:
    """This process's memory, in GiB: ``cpu_rss_gb`` (resident now), ``cpu_peak_rss_gb`` (its
    high-water mark), and on a CUDA device the caching allocator's peaks since start,
    ``max_memory_allocated_gb`` and ``max_memory_reserved_gb``. The trainers log the same
    figures every step as ``perf/*`` metrics."""
    return _selfrl.memory_usage(device)


if _version_tuple(_selfrl.torch_version)[:2] != _version_tuple(_torch.__version__)[:2]:
    raise ImportError(f"selfrl's extension was compiled against LibTorch {_selfrl.torch_version} but torch here is "
                      f"{_torch.__version__} ({_torch.__file__}); rebuild libselfrl against this torch")

from ._console import set_progress, set_log_level  # noqa: E402
from .models import CausalLM, Tokenizer, SamplingParams, RolloutEngine, Completion, RequestOutput, generate  # noqa: E402
from .rewards import Reward, make_reward, register_reward, unregister_reward, registered_rewards  # noqa: E402
from .trainers import (  # noqa: E402
    GRPOConfig, SFTConfig, DPOConfig, LoopConfig, LoraConfig, GRPOTrainer, SFTTrainer, DPOTrainer,
    STaR, ReSTEM, NFT, BSTaR, SelfRewardingDPO, ScPO, SEC, KnowRL, TrainOutput, train, check_recipe,
)
from .evaluation import evaluate  # noqa: E402
from .guard import CollapseGuard, CollapseVerdict, replay_collapse_guard  # noqa: E402
from .plotting import plot_metrics, read_metrics  # noqa: E402

__all__ = [
    "Error", "CollapseStopped", "__version__", "set_progress", "set_log_level",
    "CausalLM", "Tokenizer", "SamplingParams", "RolloutEngine", "Completion", "RequestOutput", "generate",
    "Reward", "make_reward", "register_reward", "unregister_reward", "registered_rewards",
    "GRPOConfig", "SFTConfig", "DPOConfig", "LoopConfig", "LoraConfig", "GRPOTrainer", "SFTTrainer", "DPOTrainer",
    "STaR", "ReSTEM", "NFT", "BSTaR", "SelfRewardingDPO", "ScPO", "SEC", "KnowRL", "TrainOutput", "train", "check_recipe",
    "evaluate", "plot_metrics", "read_metrics", "CollapseGuard", "CollapseVerdict", "replay_collapse_guard",
    "host_allocator", "decode_attention", "set_fused_decode_attention", "memory_usage",
]
