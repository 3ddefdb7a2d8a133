"""Evaluation against reference answers: greedy accuracy, maj@k and pass@k (``selfrl eval``)."""

from __future__ import annotations

import os
import tempfile
from typing import Optional, Union

from . import _selfrl
from .models import CausalLM, Tokenizer
from .trainers import Dataset, _dataset_path


def evaluate(model: Union[CausalLM, str], dataset: Dataset, tokenizer: Optional[Tokenizer] = None, samples: int = 1,
             temperature: float = 1.0, max_new_tokens: Optional[int] = None, answer_extractor: str = "last_number",
             seed: int = 0, batch_size: int = 64, chat_template: bool = False, per_example: bool = False) -> dict:
    """Scores ``model`` on rows with ``prompt`` (or ``messages``) and ``answer``.

    Returns ``{"accuracy": greedy accuracy, "maj@k": ..., "pass@k": ... (when samples = k > 1),
    "answered", "mean_completion_tokens", "num_examples"}`` and, with ``per_example``, the
    ``examples``. ``max_new_tokens`` defaults to what the model's context allows (at most 256).
    """
    if not isinstance(model, CausalLM):
        model = CausalLM.from_pretrained(model)
    if tokenizer is None:
        if not model.name_or_path:
            raise ValueError("evaluate: give tokenizer= (the model was not loaded from a directory)")
        tokenizer = Tokenizer.from_pretrained(model.name_or_path)
    if max_new_tokens is None:
        max_new_tokens = max(1, min(256, int(model.config.get("max_position_embeddings", 512)) // 2))
    eos = model.eos_token_ids()
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.append(tokenizer.eos_token_id)
    with tempfile.TemporaryDirectory(prefix="selfrl-eval-") as tmp:
        path = _dataset_path(dataset, "dataset", tmp)
        return _selfrl.evaluate(model._m, tokenizer._t, path, answer_extractor, samples, temperature, max_new_tokens,
                                batch_size, seed, chat_template, eos, per_example)
