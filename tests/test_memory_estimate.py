"""The memory estimate's parameter counts against the real built-in model (SmolLM2-135M, read
from its GGUF header without loading weights) and the trainable parameters PTE creates on it."""

import pytest

from pte_lora.config import LoRAConfig
from pte_rl.estimate import adapter_parameters, model_shape

QKVO = ["q_proj", "k_proj", "v_proj", "o_proj"]


@pytest.mark.parametrize("encoder,targets", [("progressive", QKVO), ("none", QKVO), ("progressive", "all-linear")])
def test_builtin_model_counts_match_the_loaded_model(encoder, targets):
    from pte_cli.build import choice_of, load_model
    from pte_rl.config import PluginChoice

    shape = model_shape("smollm2-135m-instruct")  # read from the GGUF header, no weights
    lora = LoRAConfig(target_modules=targets)
    pte, _ = load_model(choice_of("backend", PluginChoice(name="hf", options={"dtype": "float32"})),
                        choice_of("encoder", PluginChoice(name=encoder, options={})), lora=lora)
    trainable = {id(p): p.numel() for p in pte.trainable_parameters()}
    base = sum(p.numel() for p in pte.model.parameters() if id(p) not in trainable)
    assert shape.parameters() == base
    assert adapter_parameters(shape, targets, lora.r, lora.global_tokens, encoder) == sum(trainable.values())
