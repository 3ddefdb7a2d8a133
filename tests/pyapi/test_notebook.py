"""The example notebook runs top to bottom in a real Jupyter kernel and shows what it promises."""

import json
import os

import nbformat
from nbconvert.preprocessors import ExecutePreprocessor

SOURCE_DIR = os.environ.get("SELFRL_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NOTEBOOK = os.path.join(SOURCE_DIR, "examples", "notebooks", "self_improvement.ipynb")


def test_notebook_runs_headless_and_shows_a_reward_curve(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel inherits this environment (PYTHONPATH → the package of this build).
    ExecutePreprocessor(timeout=600, kernel_name="python3").preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if o.output_type in ("execute_result", "display_data") and "image/png" in o["data"]]
    assert len(images) == 1  # the reward curve, once
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.name == "stdout")
    summary = json.loads(text[text.rindex("{\n \"sft_steps\""):])
    assert summary["grpo_steps"] == 40 and summary["sft_steps"] == 1500
    for when in ("before", "after"):
        assert set(summary[when]) == {"accuracy", "maj@8", "pass@8"}
        assert 0.0 <= summary[when]["accuracy"] <= 1.0
    # The SFT warm-up learned the seed set: the held-out accuracy is far above chance.
    assert summary["before"]["accuracy"] >= 0.4
