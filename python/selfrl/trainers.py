"""Trainers, loops and recipes: the same runs as ``selfrl train``, driven from Python.

Config objects (:class:`GRPOConfig`, :class:`SFTConfig`, :class:`DPOConfig`, :class:`LoopConfig`)
hold recipe keys -- TRL's names (``learning_rate``, ``num_generations``, ``beta``,
``max_completion_length``, ...) -- validated against the keys the run kind reads (an unknown key
is an error with a did-you-mean). Trainers turn them into a recipe and run it in the C++ engine:
a GRPO step from Python is the CLI's step, bit for bit.
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

from . import _selfrl
from .errors import Error
from .models import CausalLM, Tokenizer, _copy_tokenizer_files
from .rewards import resolve_reward_funcs

Dataset = Union[str, os.PathLike, Iterable[dict]]

# Keys a trainer fills in from its own arguments.
_ARGUMENT_KEYS = {"trainer", "loop", "model", "data.train", "data.eval", "reward_funcs"}


def _flatten(prefix: str, value: Any, out: Dict[str, Any]) -> None:
    if isinstance(value, dict) and prefix.split(".")[0] in _SECTIONS:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}", v, out)
    else:
        out[prefix] = value


_SECTIONS = {"data", "eval", "judge", "star", "rest_em", "nft", "bstar", "self_rewarding", "scpo", "sec", "knowrl",
             "collapse_guard"}
_KEYS_CACHE: Dict[str, Dict[str, tuple]] = {}


def documented_keys(kind: str) -> Dict[str, tuple]:
    """``{key: (type, default, allowed, doc)}`` for every recipe key ``kind`` reads."""
    if kind not in _KEYS_CACHE:
        _KEYS_CACHE[kind] = {k: (t, d, a, doc) for k, t, d, a, doc in _selfrl.documented_keys(kind)}
    return _KEYS_CACHE[kind]


class _Config:
    """Recipe keys for one run kind. Attributes are the keys (sections as ``config.star`` dicts or
    dotted names: ``LoopConfig("star", **{"star.num_samples": 4})``)."""

    _kind = ""

    def __init__(self, **kwargs: Any):
        object.__setattr__(self, "_values", {})
        for k, v in kwargs.items():
            self._set(k, v)

    def _set(self, key: str, value: Any) -> None:
        flat: Dict[str, Any] = {}
        _flatten(key, value, flat)
        known = documented_keys(self._kind)
        for k, v in flat.items():
            if k in _ARGUMENT_KEYS:
                raise Error(f"{type(self).__name__}: {k} is set by the trainer's arguments, not the config",
                            where=k, hint="pass model= / train_dataset= / eval_dataset= / reward_funcs= to the trainer")
            if k not in known:
                close = difflib.get_close_matches(k, list(known), n=1, cutoff=0.6)
                hint = f"did you mean '{close[0]}'?" if close else "see docs/recipes.md for the keys"
                text = f"{type(self).__name__}: {k}: unknown key for {self._kind} (hint: {hint})"
                raise Error(text, message=f"unknown key for {self._kind}", where=k, hint=hint)
            self._values[k] = v

    def __setattr__(self, key: str, value: Any) -> None:
        self._set(key, value)

    def __getattr__(self, key: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if key in values:
            return values[key]
        known = documented_keys(self._kind)
        if key in known:
            return _parse_default(known[key][1], known[key][0])
        section = {k[len(key) + 1:]: v for k, v in values.items() if k.startswith(key + ".")}
        if section or any(k.startswith(key + ".") for k in known):
            return section
        raise AttributeError(f"{type(self).__name__} has no key {key!r}")

    def to_dict(self) -> Dict[str, Any]:
        """The keys set explicitly (dotted names)."""
        return dict(self._values)

    def overrides(self) -> List[str]:
        """``key=value`` overrides as ``selfrl train`` takes them (values in JSON, which YAML reads)."""
        return [f"{k}={json.dumps(_jsonable(v))}" for k, v in self._values.items()]

    @classmethod
    def keys(cls) -> List[str]:
        return sorted(documented_keys(cls._kind))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}({inner})"


class GRPOConfig(_Config):
    """Keys of ``trainer: grpo`` (TRL's GRPOConfig names; docs/recipes.md)."""
    _kind = "grpo"


class SFTConfig(_Config):
    """Keys of ``trainer: sft``."""
    _kind = "sft"


class DPOConfig(_Config):
    """Keys of ``trainer: dpo``."""
    _kind = "dpo"


class LoopConfig(_Config):
    """Keys of a self-improvement loop: ``LoopConfig("rest_em", iterations=2, rest_em={"num_samples": 4})``."""

    def __init__(self, kind: str, **kwargs: Any):
        if kind not in _selfrl.run_kinds():
            close = difflib.get_close_matches(kind, _selfrl.run_kinds(), n=1)
            raise Error(f"unknown loop {kind!r}; known: {', '.join(_selfrl.run_kinds())}", where="loop",
                        hint=f"did you mean '{close[0]}'?" if close else "")
        object.__setattr__(self, "_kind", kind)
        super().__init__(**kwargs)

    def __repr__(self) -> str:
        inner = ", ".join([repr(self._kind)] + [f"{k}={v!r}" for k, v in self._values.items()])
        return f"LoopConfig({inner})"


def _parse_default(text: str, typ: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def _jsonable(v: Any) -> Any:
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


@dataclass
class TrainOutput:
    """What ``train()`` returns (TRL's TrainOutput, plus where the run's files are)."""

    global_step: int
    metrics: Dict[str, float]
    output_dir: str
    final_model_dir: str = ""
    metrics_path: str = ""
    plot_path: str = ""
    log_history: List[dict] = field(default_factory=list, repr=False)


class LoraConfig:
    """PEFT's ``LoraConfig`` (the fields libselfrl implements), for ``peft_config=`` of a trainer.

    ``r``, ``lora_alpha`` (scale ``lora_alpha / r``; ``use_rslora``: ``/ sqrt(r)``), ``lora_dropout``,
    ``target_modules`` (names such as ``"q_proj"`` or ``"all-linear"``; default ``["q_proj", "v_proj"]``).
    The base is frozen, only the adapters train, the KL / DPO reference is the base with the
    adapters off, and ``save_model()`` writes a PEFT adapter directory.
    """

    def __init__(self, r: int = 8, lora_alpha: float = 8, lora_dropout: float = 0.0,
                 target_modules: Union[str, Sequence[str], None] = None, use_rslora: bool = False,
                 task_type: str = "CAUSAL_LM", **unsupported: Any):
        if unsupported:
            raise Error(f"LoraConfig: {', '.join(sorted(unsupported))} not supported", where="peft_config",
                        hint="supported: r, lora_alpha, lora_dropout, target_modules, use_rslora")
        if task_type != "CAUSAL_LM":
            raise Error(f"LoraConfig: task_type {task_type!r}; only CAUSAL_LM", where="peft_config")
        self.r, self.lora_alpha, self.lora_dropout, self.use_rslora = int(r), float(lora_alpha), float(lora_dropout), bool(use_rslora)
        if target_modules is None:
            target_modules = ["q_proj", "v_proj"]
        self.target_modules = [target_modules] if isinstance(target_modules, str) else list(target_modules)

    def overrides(self) -> List[str]:
        """The recipe's ``lora.*`` keys."""
        return [f"lora.r={self.r}", f"lora.lora_alpha={self.lora_alpha}", f"lora.lora_dropout={self.lora_dropout}",
                f"lora.target_modules={json.dumps(self.target_modules)}", f"lora.use_rslora={json.dumps(self.use_rslora)}"]

    def to_dict(self) -> dict:
        """adapter_config.json's fields."""
        return {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": self.r, "lora_alpha": self.lora_alpha,
                "lora_dropout": self.lora_dropout, "target_modules": self.target_modules, "use_rslora": self.use_rslora}

    def __repr__(self) -> str:
        return (f"LoraConfig(r={self.r}, lora_alpha={self.lora_alpha}, lora_dropout={self.lora_dropout}, "
                f"target_modules={self.target_modules!r}, use_rslora={self.use_rslora})")


class TrainerState:
    """TRL's ``trainer.state``: ``global_step`` and ``log_history``."""

    def __init__(self):
        self.global_step = 0
        self.log_history: List[dict] = []

    def __repr__(self) -> str:
        return f"TrainerState(global_step={self.global_step}, {len(self.log_history)} log lines)"


def _dataset_path(ds: Optional[Dataset], what: str, tmpdir: str) -> str:
    if ds is None:
        return ""
    if isinstance(ds, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(ds))
        if not os.path.exists(path):
            raise Error(f"{what}: {path} does not exist", where=what, hint="give a JSONL file or a list of dicts")
        return path
    rows = list(ds)
    if not rows:
        raise Error(f"{what} is empty", where=what, hint="give at least one row")
    path = os.path.join(tmpdir, f"{what}.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise Error(f"{what}[{i}] is a {type(row).__name__}, not a dict", where=f"{what}[{i}]",
                            hint='rows are dicts such as {"prompt": "...", "answer": "..."}')
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


class _RunTrainer:
    """A run of one kind from Python: builds the recipe, drives a C++ ``Run``."""

    _kind = ""
    _config_cls = GRPOConfig

    def __init__(self, model: Union[str, os.PathLike, CausalLM], args: Optional[_Config] = None,
                 train_dataset: Optional[Dataset] = None, eval_dataset: Optional[Dataset] = None,
                 reward_funcs=None, processing_class: Optional[Tokenizer] = None, **config: Any):
        self.peft_config: Optional[LoraConfig] = config.pop("peft_config", None)
        if self.peft_config is not None and not isinstance(self.peft_config, LoraConfig):
            raise Error(f"peft_config must be a selfrl.LoraConfig, got {type(self.peft_config).__name__}",
                        where="peft_config")
        if args is None:
            args = self._config_cls(**config) if self._config_cls is not LoopConfig else LoopConfig(self._kind, **config)
        elif config:
            for k, v in config.items():
                setattr(args, k, v)
        if args._kind != self._kind:
            raise Error(f"{type(self).__name__} needs a config of kind {self._kind}, got {type(args).__name__} of "
                        f"{args._kind}", where="args")
        self.args = args
        self._tmp = tempfile.TemporaryDirectory(prefix="selfrl-")
        if isinstance(model, CausalLM):
            if not model.name_or_path:
                raise Error("the model has no directory: trainers read its tokenizer and config from one",
                            where="model", hint="load it with CausalLM.from_pretrained(path), or save it and pass the path")
            self.model = model
        else:
            self.model = None
        self._model_dir = model.name_or_path if isinstance(model, CausalLM) else os.path.abspath(os.fspath(model))
        self.processing_class = processing_class
        self.reward_names = resolve_reward_funcs(reward_funcs)
        self._train_path = _dataset_path(train_dataset, "train_dataset", self._tmp.name)
        self._eval_path = _dataset_path(eval_dataset, "eval_dataset", self._tmp.name)
        out = args._values.get("output_dir")
        self.output_dir = os.path.abspath(os.fspath(out)) if out else os.path.join(self._tmp.name, "run")
        self.state = TrainerState()
        self._run = None

    # -- the recipe ---------------------------------------------------------------------------
    def _overrides(self, resume: Optional[str]) -> List[str]:
        o = [f"model={json.dumps(self._model_dir)}", f"output_dir={json.dumps(self.output_dir)}"]
        if self._train_path:
            o.append(f"data.train={json.dumps(self._train_path)}")
        if self._eval_path:
            o.append(f"data.eval={json.dumps(self._eval_path)}")
        if self.reward_names:
            o.append(f"reward_funcs={json.dumps(self.reward_names)}")
        o += [x for x in self.args.overrides() if not x.startswith("output_dir=")]
        if self.peft_config is not None:
            o += self.peft_config.overrides()
        if self.model is not None:  # a given model: run where it lives, in its dtype, unless told
            if "device" not in self.args._values:
                o.append(f"device={json.dumps(self.model.device)}")
            if "dtype" not in self.args._values and "bf16" not in self.args._values:
                o.append(f"dtype={json.dumps(self.model.dtype)}")
        if resume:
            o.append(f"resume_from_checkpoint={json.dumps(resume)}")
        return o

    def _recipe_text(self) -> str:
        trainer = self._kind in ("grpo", "sft", "dpo")
        return ("trainer: " if trainer else "loop: ") + self._kind + "\n"

    def _on_log(self, step: int, kind: str, metrics: dict) -> None:
        self.state.global_step = step
        self.state.log_history.append({"step": step, "kind": kind, **metrics})

    def _ensure_run(self, resume: Optional[str] = None):
        if self._run is None:
            self._run = _selfrl.Run(text=self._recipe_text(), overrides=self._overrides(resume),
                                    name=type(self.args).__name__, model=self.model._m if self.model else None,
                                    on_log=self._on_log)
            if self.model is None:
                self.model = CausalLM(self._run.model, self._model_dir)
        elif resume:
            raise Error("resume_from_checkpoint must be given to the first train() call, before any step()",
                        where="resume_from_checkpoint")
        return self._run

    # -- TRL's surface ------------------------------------------------------------------------
    def train(self, resume_from_checkpoint: Union[bool, str, None] = None) -> TrainOutput:
        """Runs the rest of the run (all of it unless step() or a checkpoint got there first).

        ``resume_from_checkpoint``: ``True`` continues from the newest complete checkpoint in
        ``output_dir`` (TRL's meaning), a path from that checkpoint. Ctrl-C stops at the next step
        boundary, writes a checkpoint when ``save_steps`` > 0 and raises ``KeyboardInterrupt``.
        """
        resume = None
        if resume_from_checkpoint is True:
            resume = "auto"
        elif resume_from_checkpoint:
            resume = os.path.abspath(os.fspath(resume_from_checkpoint))
        run = self._ensure_run(resume)
        r = run.train()
        self.state.global_step = run.global_step
        return TrainOutput(global_step=run.global_step, metrics=r["last"], output_dir=self.output_dir,
                           final_model_dir=r["final_model_dir"], metrics_path=r["metrics_path"],
                           plot_path=r["plot_path"], log_history=self.state.log_history)

    def step(self) -> Dict[str, float]:
        """One optimizer step (GRPO-based runs); its metrics, as metrics.jsonl logs them."""
        return self._ensure_run().step()

    def save_checkpoint(self) -> str:
        """Writes ``output_dir/checkpoint-<step>`` (weights, optimizer moments, RNG, data position)."""
        return self._ensure_run().save_checkpoint()

    def save_model(self, output_dir: Optional[str] = None) -> str:
        """The current model in HF format with the tokenizer files (default: output_dir/final)."""
        self._ensure_run()
        path = os.path.abspath(output_dir or os.path.join(self.output_dir, "final"))
        if _selfrl.has_lora(self.model._m):  # a PEFT adapter directory, as PEFT's save_pretrained
            cfg = self.peft_config.to_dict() if self.peft_config else self._lora_from_args()
            cfg["base_model_name_or_path"] = self._model_dir
            _selfrl.save_lora(self.model._m, cfg, path)
        else:
            self.model.save_pretrained(path)
        _copy_tokenizer_files(self._model_dir, path)
        return path

    def _lora_from_args(self) -> dict:
        v = self.args._values
        get = lambda k, d: v.get("lora." + k, v.get("lora", {}).get(k, d) if isinstance(v.get("lora"), dict) else d)
        t = get("target_modules", ["q_proj", "v_proj"])
        return LoraConfig(r=get("r", 8), lora_alpha=get("lora_alpha", 8), lora_dropout=get("lora_dropout", 0.0),
                          target_modules=t, use_rslora=get("use_rslora", False)).to_dict()

    @property
    def log_history(self) -> List[dict]:
        return self.state.log_history

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(model={self._model_dir!r}, args={self.args!r}, "
                f"global_step={self.state.global_step}, output_dir={self.output_dir!r})")


class GRPOTrainer(_RunTrainer):
    """GRPO (TRL's GRPOTrainer): ``GRPOTrainer(model, reward_funcs, args=GRPOConfig(...), train_dataset=...)``.

    ``reward_funcs``: names of registered rewards (``"self_certainty"``, ``"consensus"``, ...)
    and/or Python functions ``fn(prompts, completions, completion_ids, **kwargs)``.
    TTRL is ``reward_funcs="consensus"``, Intuitor ``reward_funcs="self_certainty"``.
    """

    _kind, _config_cls = "grpo", GRPOConfig

    def __init__(self, model, reward_funcs, args: Optional[GRPOConfig] = None, train_dataset: Optional[Dataset] = None,
                 eval_dataset: Optional[Dataset] = None, processing_class: Optional[Tokenizer] = None, **config):
        super().__init__(model, args, train_dataset, eval_dataset, reward_funcs, processing_class, **config)


class SFTTrainer(_RunTrainer):
    """Supervised fine-tuning on ``{"prompt", "completion"}`` rows (loss on completion tokens)."""

    _kind, _config_cls = "sft", SFTConfig

    def __init__(self, model, args: Optional[SFTConfig] = None, train_dataset: Optional[Dataset] = None,
                 eval_dataset: Optional[Dataset] = None, processing_class: Optional[Tokenizer] = None, **config):
        super().__init__(model, args, train_dataset, eval_dataset, None, processing_class, **config)


class DPOTrainer(_RunTrainer):
    """DPO on ``{"prompt", "chosen", "rejected"}`` rows (TRL's DPOTrainer)."""

    _kind, _config_cls = "dpo", DPOConfig

    def __init__(self, model, args: Optional[DPOConfig] = None, train_dataset: Optional[Dataset] = None,
                 eval_dataset: Optional[Dataset] = None, processing_class: Optional[Tokenizer] = None, **config):
        super().__init__(model, args, train_dataset, eval_dataset, None, processing_class, **config)


def _loop(kind: str, doc: str):
    class _Loop(_RunTrainer):
        __doc__ = doc
        _kind, _config_cls = kind, LoopConfig

        def __init__(self, model, args: Optional[LoopConfig] = None, train_dataset: Optional[Dataset] = None,
                     eval_dataset: Optional[Dataset] = None, reward_funcs=None, **config):
            super().__init__(model, args, train_dataset, eval_dataset, reward_funcs, None, **config)

    return _Loop


STaR = _loop("star", "STaR (Zelikman et al. 2022): sample rationales, keep the correct ones, fine-tune.")
ReSTEM = _loop("rest_em", "ReST-EM (Singh et al. 2023): Grow (sample, reward-filter) and Improve (SFT) steps.")
NFT = _loop("nft", "NFT (Chen et al. 2025): fine-tune on right samples and, through the implicit negative policy, "
                   "on wrong ones.")
BSTaR = _loop("bstar", "B-STaR: self-taught reasoning with exploration/exploitation balancing.")
SelfRewardingDPO = _loop("self_rewarding_dpo", "Self-rewarding LMs: the policy judges its samples, DPO on the pairs.")
ScPO = _loop("scpo", "Self-consistency preference optimization: vote-ranked pairs, weighted DPO.")
SEC = _loop("sec", "Self-evolving curriculum: GRPO with batches drawn by a TD(0) bandit over categories.")
KnowRL = _loop("knowrl", "KnowRL-style introspection: the model writes and votes on feasibility tasks, then GRPO.")
for _cls, _name in ((STaR, "STaR"), (ReSTEM, "ReSTEM"), (NFT, "NFT"), (BSTaR, "BSTaR"), (SelfRewardingDPO, "SelfRewardingDPO"),
                    (ScPO, "ScPO"), (SEC, "SEC"), (KnowRL, "KnowRL")):
    _cls.__name__ = _cls.__qualname__ = _name


def _recipe_overrides(overrides: Union[Dict[str, Any], Sequence[str], None]) -> List[str]:
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        flat: Dict[str, Any] = {}
        for k, v in overrides.items():
            _flatten(k, v, flat)
        return [f"{k}={json.dumps(_jsonable(v))}" for k, v in flat.items()]
    return list(overrides)


def train(recipe: Union[str, os.PathLike], overrides: Union[Dict[str, Any], Sequence[str], None] = None,
          model: Optional[CausalLM] = None, on_log: Optional[Callable[[int, str, dict], None]] = None) -> TrainOutput:
    """``selfrl train RECIPE key=value ...`` in this process.

    Args:
        recipe: the YAML recipe.
        overrides: ``{"max_steps": 4, "star": {"num_samples": 2}}`` or ``["max_steps=4"]``.
        model: train this model in place (its directory must be the recipe's ``model``).
        on_log: called with (step, kind, metrics) for every logged line.

    Python rewards registered with :func:`selfrl.register_reward` can be named in the recipe.
    """
    history: List[dict] = []

    def log(step, kind, m):
        history.append({"step": step, "kind": kind, **m})
        if on_log is not None:
            on_log(step, kind, m)

    run = _selfrl.Run(path=os.fspath(recipe), overrides=_recipe_overrides(overrides),
                      model=model._m if model is not None else None, on_log=log)
    r = run.train()
    return TrainOutput(global_step=run.global_step, metrics=r["last"], output_dir=run.output_dir,
                       final_model_dir=r["final_model_dir"], metrics_path=r["metrics_path"], plot_path=r["plot_path"],
                       log_history=history)


def check_recipe(recipe: Union[str, os.PathLike], overrides: Union[Dict[str, Any], Sequence[str], None] = None) -> dict:
    """Validates a recipe (keys, types, ranges, paths, rewards) without running it."""
    return _selfrl.check_recipe(path=os.fspath(recipe), overrides=_recipe_overrides(overrides))
