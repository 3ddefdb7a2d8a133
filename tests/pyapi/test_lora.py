"""LoRA from Python: TRL's ``peft_config=`` on a trainer, PEFT-format adapters out, and the
model methods (load_adapter, merge_and_unload) that give the adapted function."""

import json
import os

import pytest
import torch

import selfrl


def test_grpo_with_peft_config_trains_only_adapters_and_saves_a_peft_adapter(world, tmp_path):
    model = selfrl.CausalLM.from_pretrained(world["model"])
    base = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = selfrl.GRPOTrainer(model, ["self_certainty"], args=selfrl.GRPOConfig(
        max_steps=2, num_generations=4, per_device_train_batch_size=8, max_completion_length=6, learning_rate=1e-2,
        beta=0.04, output_dir=str(tmp_path / "g")), train_dataset=world["train_rows"],
        peft_config=selfrl.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    trainer.train()
    assert model.has_adapter
    after = model.state_dict()
    for k, v in base.items():  # the base is frozen
        assert torch.equal(v, after[k]), k
    assert any(".lora_B." in k and after[k].abs().sum() > 0 for k in after), "the adapters trained"
    assert all(".lora_" in k for k in after if after[k].requires_grad)
    assert all(l["kl"] == l["kl"] for l in trainer.log_history if l["kind"] == "train")  # KL to the base: finite
    out = trainer.save_model(str(tmp_path / "adapter"))
    cfg = json.load(open(os.path.join(out, "adapter_config.json")))
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 4 and cfg["target_modules"] == ["all-linear"]
    assert os.path.exists(os.path.join(out, "adapter_model.safetensors"))
    assert not os.path.exists(os.path.join(out, "model.safetensors"))

    # The adapter on a fresh base gives the trained model's log-probs; merged, the same.
    ids = torch.tensor([[1, 7, 9, 12, 30, 4]])
    want = model.logprobs(ids)
    again = selfrl.CausalLM.from_pretrained(world["model"])
    again.load_adapter(out)
    assert torch.allclose(again.logprobs(ids), want, atol=1e-6)
    again.merge_and_unload()
    assert not again.has_adapter
    assert torch.allclose(again.logprobs(ids), want, atol=1e-5)


def test_lora_config_refuses_what_it_does_not_implement():
    with pytest.raises(selfrl.Error, match="use_dora"):
        selfrl.LoraConfig(r=8, use_dora=True)
    with pytest.raises(selfrl.Error, match="peft_config"):
        selfrl.GRPOTrainer("unused", "consensus", peft_config={"r": 8})
