"""Fixtures for the Python API tests: a tiny Llama with an in-process-trained sentencepiece
tokenizer, saved in the Hugging Face layout, and small arithmetic datasets (as in the C++ loop
fixture, tests/integration/loops/loop_fixture.h)."""

import json
import os
import shutil
import subprocess

import pytest

import selfrl

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def selfrl_cli() -> str:
    """The selfrl program of the build this package comes from."""
    exe = os.environ.get("SELFRL_CLI")
    if exe:
        return exe
    pkg = os.path.dirname(selfrl.__file__)  # BUILD/python/selfrl
    return os.path.join(os.path.dirname(os.path.dirname(pkg)), "selfrl")


def make_tiny_model(root: str, seed: int = 7, max_position_embeddings: int = 512) -> str:
    lines = [f"{a} + {b} = {a + b}" for a in range(10) for b in range(10)]
    lines += ["the answer is", "what is", "feasible infeasible", "Score: 5"] * 5
    spm = selfrl.Tokenizer.train_sentencepiece(lines, os.path.join(root, "tok"), vocab_size=120)
    model_dir = os.path.join(root, "base")
    os.makedirs(model_dir, exist_ok=True)
    shutil.copyfile(spm, os.path.join(model_dir, "tokenizer.model"))
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 120, "hidden_size": 32,
           "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "max_position_embeddings": max_position_embeddings, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2, "initializer_range": 0.2}
    selfrl.CausalLM.from_config(cfg, seed=seed).save_pretrained(model_dir)
    return model_dir


def write_jsonl(path: str, rows) -> str:
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return path


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("world"))
    model = make_tiny_model(root)
    train = [{"prompt": f"{i % 10} + {(i * 3) % 10} =", "answer": str(i % 10 + (i * 3) % 10),
              "difficulty": "easy" if i % 2 else "hard"} for i in range(8)]
    evals = [{"prompt": f"{i} + 1 =", "answer": str(i + 1)} for i in range(4)]
    sft = [{"prompt": f"{a} + {b} =", "completion": f" {a + b}"} for a in range(4) for b in range(4)]
    dpo = [{"prompt": f"{a} + 1 =", "chosen": f" {a + 1}", "rejected": f" {a + 2}"} for a in range(8)]
    return {
        "root": root, "model": model,
        "train_rows": train, "eval_rows": evals,
        "train": write_jsonl(os.path.join(root, "train.jsonl"), train),
        "eval": write_jsonl(os.path.join(root, "eval.jsonl"), evals),
        "sft": write_jsonl(os.path.join(root, "sft.jsonl"), sft),
        "dpo": write_jsonl(os.path.join(root, "dpo.jsonl"), dpo),
    }


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([selfrl_cli(), *args], capture_output=True, text=True, cwd=cwd)
