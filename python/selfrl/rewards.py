"""Rewards: the built-ins by name, Python functions with TRL's signature, and the registry that
recipes name rewards through.

A Python reward is any callable ``fn(prompts, completions, completion_ids, **kwargs)`` that
returns one float (or ``None``: unscorable) per completion -- TRL's reward-function contract.
libselfrl calls it once per prompt group (the G completions of one prompt; ``prompts`` holds
that prompt G times) with the GIL taken only for the call. Every other dataset column arrives as
a keyword argument with one value per completion. A function that raises, returns the wrong
number of values (nothing is broadcast) or returns non-numbers makes that group unscorable for
that reward -- the same policy as a C++ reward that throws -- with a warning naming the reward
and the step, and the count in ``rewards/<name>/unscorable``.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple, Union

from . import _selfrl

Reward = _selfrl.Reward
RewardLike = Union[str, Callable, "Reward"]


def make_reward(name: str, answer_extractor: str = "last_number", answer_field: str = "answer",
                max_completion_length: int = 64, borda_power: float = 0.5, format_pattern: str = "",
                consensus_min_vote_share: float = 0.0) -> Reward:
    """A registered reward by name (``self_certainty``, ``consensus``, ``borda``, ``verifier``,
    ``format``, ``soft_overlong``, ``length_penalty``, or one you registered), configured with
    the recipe's knobs. Score a group with ``reward.score_group(prompt, completions, ...)``.
    ``consensus_min_vote_share``: consensus and borda score a group 0 when its winning answer
    holds less than this share of the samples (0: TTRL as published)."""
    return _selfrl.make_reward(name, answer_extractor, answer_field, max_completion_length, borda_power, format_pattern,
                               consensus_min_vote_share)


def register_reward(name: str, fn: Union[Callable, Reward], doc: str = "") -> None:
    """Makes ``fn`` usable by name in recipes (``reward_funcs: [name]``) and trainers.

    ``fn`` is a Python function with TRL's reward signature or a :class:`Reward`.
    """
    _selfrl.register_reward(name, _as_reward(name, fn), doc or (fn.__doc__ or "").strip().split("\n")[0])


def unregister_reward(name: str) -> bool:
    """Removes a reward registered from Python or C++ code (built-ins stay)."""
    return _selfrl.unregister_reward(name)


def registered_rewards() -> List[Tuple[str, str, bool]]:
    """``[(name, doc, builtin)]`` for every reward recipes can name."""
    return list(_selfrl.registered_rewards())


def reward_name(fn: RewardLike) -> str:
    if isinstance(fn, str):
        return fn
    if isinstance(fn, Reward):
        return fn.name
    return getattr(fn, "__name__", None) or type(fn).__name__


def _as_reward(name: str, fn: Union[Callable, Reward]) -> Reward:
    if isinstance(fn, Reward):
        return fn
    if not callable(fn):
        raise TypeError(f"reward {name!r}: expected a callable fn(prompts, completions, completion_ids, **kwargs), "
                        f"got {type(fn).__name__}")
    return _selfrl.python_reward(name, fn)


def resolve_reward_funcs(reward_funcs: Union[RewardLike, Sequence[RewardLike], None]) -> List[str]:
    """Names for a trainer's reward_funcs: strings as they are; callables are registered under
    their ``__name__`` (a built-in's name is refused); Reward objects under their name, or, for a
    built-in configured with make_reward, as ``<name>_<k>`` (metrics keep ``rewards/<name>/...``)."""
    if reward_funcs is None:
        return []
    if isinstance(reward_funcs, (str, Reward)) or callable(reward_funcs):
        reward_funcs = [reward_funcs]
    builtins = {n for n, _, b in registered_rewards() if b}
    names = []
    for fn in reward_funcs:
        name = reward_name(fn)
        if isinstance(fn, Reward) and name in builtins:
            # A built-in configured here (make_reward("consensus", answer_extractor="boxed")):
            # registered under a name of its own; its metrics keep the reward's name.
            global _configured
            _configured += 1
            name = f"{name}_{_configured}"
            register_reward(name, fn, "configured from Python")
        elif not isinstance(fn, str):
            if name in builtins:
                raise ValueError(f"reward {name!r} has the name of a built-in reward; give your function another "
                                 f"name, or pass the string {name!r} to use the built-in")
            register_reward(name, fn)
        names.append(name)
    return names


_configured = 0
