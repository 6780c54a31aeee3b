"""An adapter saved with encoder `none` is a plain LoRA that PEFT loads with identical outputs."""

import torch
from peft import PeftModel
from transformers import LlamaConfig, LlamaForCausalLM

from pte_lora import AdapterManifest, save_adapter
from pte_rl import PTEModel
from pte_thought import IdentityConfig, IdentityEncoder


def test_none_encoder_adapter_loads_in_peft(tmp_path):
    config = LlamaConfig(vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    torch.manual_seed(0)
    ours = LlamaForCausalLM(config).eval()
    torch.manual_seed(0)
    theirs = LlamaForCausalLM(config).eval()
    pte = PTEModel(ours, IdentityEncoder(IdentityConfig(rank=8)))
    torch.manual_seed(1)
    for p in pte.lora.parameters():
        p.data.normal_(0, 0.1)
    manifest = AdapterManifest(pte_version="0.1.0", base_model="tiny", lora=pte.lora.config, encoder="none")
    save_adapter(tmp_path / "ad", pte.lora, manifest, pte.encoder)
    peft_model = PeftModel.from_pretrained(theirs, str(tmp_path / "ad")).eval()
    ids = torch.randint(0, 101, (2, 12))
    with torch.no_grad():
        want = ours(ids).logits
        got = peft_model(ids).logits
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    with torch.no_grad(), pte.lora.disabled():
        base = ours(ids).logits
    assert not torch.allclose(base, want, atol=1e-3)  # the adapter really changes outputs


def test_state_carrying_adapter_is_not_a_peft_lora(tmp_path):
    """A progressive adapter needs its state S: PEFT must refuse the folder, not load a different model."""
    import pytest

    from pte_lora import load_adapter
    from pte_thought import ProgressiveEncoder, ThoughtConfig

    config = LlamaConfig(vocab_size=101, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    torch.manual_seed(0)
    pte = PTEModel(LlamaForCausalLM(config).eval(), ProgressiveEncoder(ThoughtConfig(global_tokens=8, rank=4)))
    for p in pte.lora.parameters():
        p.data.normal_(0, 0.1)
    manifest = AdapterManifest(pte_version="0.1.0", base_model="tiny", lora=pte.lora.config, encoder="progressive")
    save_adapter(tmp_path / "ad", pte.lora, manifest, pte.encoder)
    assert not (tmp_path / "ad" / "adapter_config.json").exists()
    with pytest.raises(ValueError, match="adapter_config.json"):
        PeftModel.from_pretrained(LlamaForCausalLM(config).eval(), str(tmp_path / "ad"))
    torch.manual_seed(0)
    again = PTEModel(LlamaForCausalLM(config).eval(), ProgressiveEncoder(ThoughtConfig(global_tokens=8, rank=4)))
    load_adapter(tmp_path / "ad", again.lora, again.encoder)  # pte itself reads it, bit-exact
    for a, b in zip(pte.lora.parameters(), again.lora.parameters()):
        assert torch.equal(a, b)
