"""Models, tokenizers and generation: thin Python faces of the C++ objects."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Union

import torch

from . import _selfrl


class CausalLM:
    """A decoder-only transformer (Llama, Qwen2, Qwen3) with Hugging Face names and files.

    Load with :meth:`from_pretrained`; :meth:`state_dict` returns the parameters themselves, so
    a tensor changed in Python is the model's tensor (no copy).
    """

    def __init__(self, native, name_or_path: str = ""):
        self._m = native
        self.name_or_path = name_or_path

    @classmethod
    def from_pretrained(cls, path: Union[str, os.PathLike], device: str = "cpu", dtype: str = "float32") -> "CausalLM":
        """Loads config.json and the safetensors of a Hugging Face model directory.

        Args:
            path: the model directory.
            device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
            dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"`` (also a ``torch.dtype``).
        """
        path = os.fspath(path)
        return cls(_selfrl.CausalLM.from_pretrained(path, device, _dtype_name(dtype)), os.path.abspath(path))

    @classmethod
    def from_config(cls, config: dict, seed: int = 0, device: str = "cpu", dtype: str = "float32") -> "CausalLM":
        """A randomly initialized model from a config.json dictionary (HF ``_init_weights``)."""
        return cls(_selfrl.CausalLM.from_config(dict(config), seed, device, _dtype_name(dtype)))

    def save_pretrained(self, path: Union[str, os.PathLike], max_shard_bytes: int = 5_000_000_000) -> None:
        """Writes config.json and safetensors in the Hugging Face layout (sharded when large).

        Tokenizer files are not model files: copy them with :meth:`Tokenizer.save_pretrained`
        or use a trainer's ``save_model``. A model with LoRA adapters saves its base only (merge
        first with :meth:`merge_and_unload`, or save the adapter through a trainer's ``save_model``).
        """
        self._m.save_pretrained(os.fspath(path), max_shard_bytes)

    # -- LoRA adapters (PEFT's format; docs/lora.md) -----------------------------------------
    def load_adapter(self, path: Union[str, os.PathLike]) -> dict:
        """Adds the PEFT LoRA adapter in ``path`` (adapter_config.json, adapter_model.safetensors)
        to this model, freezing the base; returns its config."""
        return _selfrl.load_lora(self._m, os.fspath(path))

    def add_adapter(self, peft_config) -> int:
        """New LoRA adapters from a :class:`selfrl.LoraConfig` (B = 0: the model is unchanged);
        returns how many projections were adapted."""
        return _selfrl.add_lora(self._m, peft_config.to_dict())

    def merge_and_unload(self) -> "CausalLM":
        """Adapters merged into the weights (W + s·B·A) and removed, as PEFT's; returns self."""
        _selfrl.merge_lora(self._m)
        return self

    @property
    def has_adapter(self) -> bool:
        return _selfrl.has_lora(self._m)

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """Parameters by Hugging Face name, sharing memory with the model."""
        return self._m.state_dict()

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Final hidden states ``[batch, seq, hidden]`` (after the last norm, before lm_head)."""
        return self._m.forward(input_ids, attention_mask)

    def logits(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits ``[batch, seq, vocab]`` for every position (materializes the full tensor)."""
        return self._m.logits(self._m.forward(input_ids, attention_mask))

    def logprobs(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                 temperature: float = 1.0, chunk_size: int = 1024) -> torch.Tensor:
        """log p(input_ids[:, t] | input_ids[:, :t]) for t >= 1: ``[batch, seq - 1]`` float32.

        Computed in chunks of rows, without the full ``[batch, seq, vocab]`` logits; gradients
        flow unless called under ``torch.no_grad()``.
        """
        return self.token_stats(input_ids, attention_mask, temperature, chunk_size)["logprobs"]

    def token_stats(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                    temperature: float = 1.0, chunk_size: int = 1024) -> Dict[str, torch.Tensor]:
        """Per-token ``logprobs``, ``entropy`` and ``self_certainty`` (KL(U || p)) of the next
        tokens, each ``[batch, seq - 1]`` float32."""
        lp, ent, sc = self._m.token_stats(_as_ids(input_ids), attention_mask, temperature, chunk_size)
        return {"logprobs": lp, "entropy": ent, "self_certainty": sc}

    def train(self, mode: bool = True) -> "CausalLM":
        self._m.train_mode(mode)
        return self

    def eval(self) -> "CausalLM":
        return self.train(False)

    @property
    def config(self) -> dict:
        """config.json as a dictionary."""
        return self._m.config

    @property
    def device(self) -> str:
        return self._m.device

    @property
    def dtype(self) -> str:
        return self._m.dtype

    def num_parameters(self) -> int:
        return self._m.num_parameters

    def eos_token_ids(self) -> List[int]:
        """The stop ids of config.json and generation_config.json (needs a model directory)."""
        if not self.name_or_path:
            return [int(x) for x in _as_list(self.config.get("eos_token_id"))]
        return list(_selfrl.eos_token_ids(self.name_or_path, self._m))

    def __repr__(self) -> str:
        arch = (self.config.get("architectures") or [self.config.get("model_type", "?")])[0]
        return (f"CausalLM({arch}, {self.num_parameters():,} parameters, {self.dtype} on {self.device}"
                + (f", from {self.name_or_path!r})" if self.name_or_path else ")"))


class Tokenizer:
    """Text <-> token ids, as Hugging Face tokenizers does it (tokenizer.json or tokenizer.model)."""

    def __init__(self, native, name_or_path: str = ""):
        self._t = native
        self.name_or_path = name_or_path

    @classmethod
    def from_pretrained(cls, path: Union[str, os.PathLike]) -> "Tokenizer":
        path = os.fspath(path)
        return cls(_selfrl.Tokenizer.from_pretrained(path), os.path.abspath(path))

    def encode(self, text: str, add_special_tokens: bool = True) -> List[int]:
        return self._t.encode(text, add_special_tokens)

    def __call__(self, text: Union[str, List[str]], add_special_tokens: bool = True) -> dict:
        """``{"input_ids": ...}`` for one text or a list of texts, like HF's ``tokenizer(text)``."""
        if isinstance(text, str):
            return {"input_ids": self.encode(text, add_special_tokens)}
        return {"input_ids": self._t.encode_batch(list(text), add_special_tokens)}

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids``; ids past the vocabulary (models often have more embedding rows than
        tokens) decode to nothing, as in HF tokenizers."""
        return self._t.decode([int(i) for i in ids], skip_special_tokens)

    def batch_decode(self, sequences: Iterable[Iterable[int]], skip_special_tokens: bool = False) -> List[str]:
        return [self.decode(s, skip_special_tokens) for s in sequences]

    def apply_chat_template(self, conversation: Sequence[dict], tokenize: bool = True,
                            add_generation_prompt: bool = False, fallback_format: str = ""):
        """Renders the tokenizer's chat template (HF's defaults: ``tokenize=True``,
        ``add_generation_prompt=False``). ``fallback_format`` (chatml, llama3, plain) is used
        when the tokenizer has no template."""
        msgs = [(m["role"], m["content"]) for m in conversation]
        text = self._t.render_chat(msgs, add_generation_prompt, fallback_format)
        return self.encode(text, add_special_tokens=False) if tokenize else text

    def save_pretrained(self, path: Union[str, os.PathLike]) -> None:
        """Copies the tokenizer files it was loaded from into ``path``."""
        if not self.name_or_path:
            raise ValueError("this tokenizer was not loaded from a directory")
        _copy_tokenizer_files(self.name_or_path, os.fspath(path))

    def convert_ids_to_tokens(self, ids: Union[int, Iterable[int]]):
        if isinstance(ids, int):
            return self._t.id_to_token(ids)
        return [self._t.id_to_token(int(i)) for i in ids]

    def convert_tokens_to_ids(self, token: str) -> Optional[int]:
        return self._t.token_to_id(token)

    @staticmethod
    def train_sentencepiece(lines: Sequence[str], out_prefix: str, vocab_size: int = 256, model_type: str = "bpe") -> str:
        """Trains a sentencepiece model in-process; returns the ``.model`` path."""
        return _selfrl.train_sentencepiece(list(lines), out_prefix, vocab_size, model_type)

    vocab_size = property(lambda self: self._t.vocab_size)
    bos_token_id = property(lambda self: self._t.bos_token_id)
    eos_token_id = property(lambda self: self._t.eos_token_id)
    pad_token_id = property(lambda self: self._t.pad_token_id)
    chat_template = property(lambda self: self._t.chat_template)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, eos_token_id={self.eos_token_id}, from {self.name_or_path!r})"


@dataclass(init=False)
class SamplingParams:
    """How completions are sampled (vLLM's ``SamplingParams`` / TRL's generation knobs).

    ``n`` (vLLM) and ``num_generations`` (TRL) are accepted for ``num_samples``; ``max_tokens``
    (vLLM) and ``max_completion_length`` (TRL) for ``max_new_tokens``. ``stop`` holds stop
    strings (tokenized with the engine's tokenizer); the stop text is kept in the completion.
    """

    num_samples: int = 1
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    seed: int = 0
    stop_token_ids: List[int] = field(default_factory=list)
    stop: List[str] = field(default_factory=list)
    ignore_eos: bool = False

    def __init__(self, num_samples: Optional[int] = None, max_new_tokens: Optional[int] = None, temperature: float = 1.0,
                 top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0, seed: int = 0,
                 stop_token_ids: Optional[List[int]] = None, stop: Optional[List[str]] = None, ignore_eos: bool = False,
                 *, n: Optional[int] = None, num_generations: Optional[int] = None, max_tokens: Optional[int] = None,
                 max_completion_length: Optional[int] = None):
        picks = [v for v in (num_samples, n, num_generations) if v is not None]
        if len(picks) > 1:
            raise ValueError("SamplingParams: give one of num_samples, n, num_generations")
        lens = [v for v in (max_new_tokens, max_tokens, max_completion_length) if v is not None]
        if len(lens) > 1:
            raise ValueError("SamplingParams: give one of max_new_tokens, max_tokens, max_completion_length")
        self.num_samples = picks[0] if picks else 1
        self.max_new_tokens = lens[0] if lens else 256
        self.temperature, self.top_k, self.top_p, self.min_p, self.seed = temperature, top_k, top_p, min_p, seed
        self.stop_token_ids = list(stop_token_ids or [])
        self.stop = [stop] if isinstance(stop, str) else list(stop or [])
        self.ignore_eos = ignore_eos

    def _native(self, tokenizer: Optional[Tokenizer]):
        p = _selfrl._SamplingParams()
        p.num_samples, p.max_new_tokens = int(self.num_samples), int(self.max_new_tokens)
        p.temperature, p.top_k, p.top_p, p.min_p = float(self.temperature), int(self.top_k), float(self.top_p), float(self.min_p)
        p.seed, p.stop_token_ids, p.ignore_eos = int(self.seed), [int(i) for i in self.stop_token_ids], bool(self.ignore_eos)
        if self.stop:
            if tokenizer is None:
                raise ValueError("SamplingParams.stop needs a tokenizer (give RolloutEngine one)")
            p.stop_sequences = [tokenizer.encode(s, add_special_tokens=False) for s in self.stop]
        p.validate()
        return p


@dataclass
class Completion:
    """One sampled completion (vLLM's ``CompletionOutput``, plus per-token statistics)."""

    index: int
    text: str
    token_ids: List[int]
    logprobs: List[float]        # log p(token), temperature-scaled distribution (what GRPO scores)
    raw_logprobs: List[float]    # log p(token) at temperature 1
    entropy: List[float]         # per token
    self_certainty: List[float]  # per token, KL(U || p)
    finish_reason: str           # "stop" or "length"

    @property
    def mean_self_certainty(self) -> float:
        return sum(self.self_certainty) / len(self.self_certainty) if self.self_certainty else float("nan")

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return f"Completion(index={self.index}, text={text!r}, tokens={len(self.token_ids)}, finish_reason={self.finish_reason!r})"


@dataclass
class RequestOutput:
    """The completions of one prompt (vLLM's ``RequestOutput``)."""

    prompt: Optional[str]
    prompt_token_ids: List[int]
    outputs: List[Completion]

    def __repr__(self) -> str:
        return f"RequestOutput(prompt={self.prompt!r}, {len(self.outputs)} outputs)"


class RolloutEngine:
    """Batched, KV-cached sampling of G completions per prompt (the GRPO trainer's engine).

    Args:
        model: the policy (shared, not copied: a trained model samples with its new weights).
        tokenizer: turns text prompts into ids and completions into text (default: the
            model directory's tokenizer when the model was loaded from one).
        max_batch_size: rows (prompts x samples) decoded together.
        eos_token_ids: stop ids (default: the model directory's config and generation_config).
        continuous_batching: refill the batch with waiting prompts as rows finish (vLLM's
            scheduling) instead of decoding in waves; same samples for the same seeds.
        share_prompt_cache: keep each prompt's keys and values once for its G samples (the
            default; in waves and with continuous batching). False copies them to every sample:
            same tokens, statistics equal up to the order of float sums.
        kv_block_size: the KV cache grows by this many token positions at a time as the longest
            running completion needs them (0: reserve every row's max_tokens up front).
    """

    def __init__(self, model: CausalLM, tokenizer: Optional[Tokenizer] = None, max_batch_size: int = 64,
                 eos_token_ids: Optional[List[int]] = None, continuous_batching: bool = False,
                 share_prompt_cache: bool = True, kv_block_size: int = 256):
        self.model = model
        if tokenizer is None and model.name_or_path and _has_tokenizer(model.name_or_path):
            tokenizer = Tokenizer.from_pretrained(model.name_or_path)
        self.tokenizer = tokenizer
        if eos_token_ids is None:
            eos_token_ids = model.eos_token_ids()
            if tokenizer is not None and tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_token_ids:
                eos_token_ids.append(tokenizer.eos_token_id)
        self.eos_token_ids = list(eos_token_ids)
        self._e = _selfrl._RolloutEngine(model._m, max_batch_size, self.eos_token_ids, continuous_batching,
                                         share_prompt_cache, kv_block_size)

    def generate(self, prompts: Union[str, Sequence[str], Sequence[Sequence[int]]],
                 sampling_params: Optional[SamplingParams] = None, request_seeds: Optional[List[int]] = None,
                 add_special_tokens: bool = True) -> List[RequestOutput]:
        """Samples ``sampling_params.num_samples`` completions for every prompt (text or ids).

        Runs in C++ with the GIL released (other Python threads keep running).
        """
        params = sampling_params or SamplingParams()
        if isinstance(prompts, str):
            prompts = [prompts]
        texts: List[Optional[str]] = []
        ids: List[List[int]] = []
        for p in prompts:
            if isinstance(p, str):
                if self.tokenizer is None:
                    raise ValueError("text prompts need a tokenizer: RolloutEngine(model, tokenizer=...)")
                texts.append(p)
                ids.append(self.tokenizer.encode(p, add_special_tokens))
            else:
                texts.append(None)
                ids.append([int(i) for i in p])
        raw = self._e.generate(ids, params._native(self.tokenizer), [int(s) for s in (request_seeds or [])])
        out = []
        for text, (prompt_ids, comps) in zip(texts, raw):
            outputs = [Completion(index=c["index"],
                                  text=self.tokenizer.decode(c["token_ids"], skip_special_tokens=True) if self.tokenizer else "",
                                  token_ids=c["token_ids"], logprobs=c["logprobs"], raw_logprobs=c["raw_logprobs"],
                                  entropy=c["entropy"], self_certainty=c["self_certainty"],
                                  finish_reason=c["finish_reason"]) for c in comps]
            out.append(RequestOutput(prompt=text, prompt_token_ids=prompt_ids, outputs=outputs))
        return out

    def last_timings(self) -> dict:
        """Seconds and tokens of the last generate() call's prefill and decode, its decode steps, and
        peak_cache_bytes: the KV cache at its largest (after admitting prompts)."""
        return self._e.last_timings()

    def __repr__(self) -> str:
        return f"RolloutEngine({self.model!r}, eos_token_ids={self.eos_token_ids})"


def generate(model: CausalLM, prompts, sampling_params: Optional[SamplingParams] = None,
             tokenizer: Optional[Tokenizer] = None, **kwargs) -> List[RequestOutput]:
    """One-shot ``RolloutEngine(model, tokenizer).generate(prompts, sampling_params)``."""
    return RolloutEngine(model, tokenizer).generate(prompts, sampling_params, **kwargs)


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                    "generation_config.json", "vocab.json", "merges.txt", "added_tokens.json")


def _has_tokenizer(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, f)) for f in ("tokenizer.json", "tokenizer.model"))


def _copy_tokenizer_files(src: str, dst: str) -> None:
    import shutil
    os.makedirs(dst, exist_ok=True)
    for f in _TOKENIZER_FILES:
        s = os.path.join(src, f)
        if os.path.exists(s) and os.path.abspath(s) != os.path.abspath(os.path.join(dst, f)):
            shutil.copyfile(s, os.path.join(dst, f))


def _dtype_name(dtype) -> str:
    if isinstance(dtype, torch.dtype):
        return {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype]
    return str(dtype)


def _as_ids(t) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        t = torch.tensor(t, dtype=torch.int64)
    if t.dim() == 1:
        t = t.unsqueeze(0)
    return t.to(torch.int64)


def _as_list(v) -> list:
    if v is None:
        return []
    return list(v) if isinstance(v, (list, tuple)) else [v]
