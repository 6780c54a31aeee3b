"""State-conditioned LoRA: maths, attachment, adapter files."""

import json

import pytest
import torch
from torch import nn

from pte_lora import AdapterManifest, LoRAConfig, attach_lora, load_adapter, read_manifest, save_adapter


class Attn(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, 8)
        self.v_proj, self.o_proj = nn.Linear(d, 8), nn.Linear(d, d, bias=False)


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.self_attn = Attn()
        self.mlp = nn.Linear(16, 16)


class Toy(nn.Module):
    """Names like a transformers decoder: model.layers.N.self_attn.q_proj, plus an lm_head."""

    def __init__(self):
        super().__init__()
        self.model = nn.Module()
        self.model.layers = nn.ModuleList([Layer(), Layer()])
        self.lm_head = nn.Linear(16, 10)

    def forward(self, x):
        for layer in self.model.layers:
            a = layer.self_attn
            x = x + a.o_proj(a.q_proj(x)) + layer.mlp(x)
            x = x + torch.cat([a.k_proj(x), a.v_proj(x)], -1)
        return self.lm_head(x)


def make(config=None, seed=0):
    torch.manual_seed(seed)
    model = Toy()
    return model, attach_lora(model, config or LoRAConfig(r=4, global_tokens=4, lora_alpha=8))


def test_untrained_adapter_is_exact_identity_and_base_is_frozen():
    torch.manual_seed(0)
    plain = Toy()
    model, lora = make()
    x = torch.randn(2, 3, 16)
    lora.set_states([torch.randn(2, 4, 4)] * 2)
    assert torch.equal(model(x), plain(x))
    trainable = {id(p) for p in lora.parameters()}
    assert all(not p.requires_grad for p in model.parameters() if id(p) not in trainable)
    assert all(p.dtype == torch.float32 for p in lora.parameters())
    assert sorted(lora.modules) == sorted(
        f"model.layers.{i}.self_attn.{n}_proj" for i in (0, 1) for n in "qkvo"
    )


def test_identity_state_is_plain_lora_by_hand():
    model, lora = make()
    torch.manual_seed(1)
    for p in lora.parameters():
        p.data.normal_()
    x = torch.randn(2, 3, 16)
    m = lora.modules["model.layers.0.self_attn.q_proj"]
    want = m.base(x) + 2.0 * (x @ m.lora_A.weight.T) @ m.lora_B.weight.T
    assert torch.allclose(m(x), want, atol=1e-5)
    s = torch.randn(2, 4, 4)
    m.state = s
    want_s = m.base(x) + 2.0 * torch.einsum("blr,bgr->blg", x @ m.lora_A.weight.T, s) @ m.lora_B.weight.T
    assert torch.allclose(m(x), want_s, atol=1e-5)
    m.state = torch.eye(4).expand(2, 4, 4)
    assert torch.allclose(m(x), want, atol=1e-5)
    with lora.disabled():
        assert torch.equal(m(x), m.base(x))


def test_bf16_base_keeps_fp32_factors():
    torch.manual_seed(0)
    model = Toy().to(torch.bfloat16)
    lora = attach_lora(model, LoRAConfig(r=4, global_tokens=4, target_modules="all-linear"))
    assert "model.layers.0.mlp" in lora.modules and "lm_head" not in lora.modules
    assert all(p.dtype == torch.float32 for p in lora.parameters())
    out = model(torch.randn(1, 2, 16, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert all(p.grad is not None for p in lora.parameters())


def manifest():
    return AdapterManifest(pte_version="0.1.0", base_model="toy", lora=LoRAConfig(r=4, global_tokens=4, lora_alpha=8),
                           encoder="progressive", encoder_options={"rank": 4}, eviction="lru-prompt-keep")


def test_save_load_round_trip_bit_exact(tmp_path):
    model, lora = make()
    for p in lora.parameters():
        p.data.normal_()
    encoder = nn.Linear(3, 2)
    x = torch.randn(1, 2, 16)
    want = model(x)
    save_adapter(tmp_path / "ad", lora, manifest(), encoder)
    files = sorted(p.name for p in (tmp_path / "ad").iterdir())
    # a state-carrying encoder (the default for any encoder): no PEFT config, PEFT cannot misload it
    assert files == ["adapter_model.safetensors", "pte_config.json", "thought_encoder.safetensors"]
    plain = nn.Linear(3, 2)
    plain.carries_state = False  # as encoder `none`: S = I, a plain LoRA
    save_adapter(tmp_path / "plain", lora, manifest(), plain)
    cfg = json.loads((tmp_path / "plain" / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 4 and cfg["target_modules"] == ["k_proj", "o_proj", "q_proj", "v_proj"]
    model2, lora2 = make()  # same base weights; scramble the adapter so loading must restore it
    for p in lora2.parameters():
        p.data.uniform_()
    enc2 = nn.Linear(3, 2)
    assert not torch.equal(model2(x), want)
    got_manifest = load_adapter(tmp_path / "ad", lora2, enc2)
    assert got_manifest.encoder == "progressive"
    assert torch.equal(model2(x), want)
    assert torch.equal(enc2.weight, encoder.weight)
    assert not list(tmp_path.glob(".ad*")), "no temp folders left behind"


def test_bad_adapter_files_give_clear_errors(tmp_path):
    _, lora = make()
    save_adapter(tmp_path / "ad", lora, manifest())
    (tmp_path / "ad" / "adapter_model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="adapter_model.safetensors: not a readable safetensors"):
        load_adapter(tmp_path / "ad", lora)
    _, small = make(LoRAConfig(r=2, global_tokens=2))
    save_adapter(tmp_path / "small", small, manifest())
    with pytest.raises(ValueError, match=r"lora_A.weight has shape \(2, 16\), model expects \(4, 16\)"):
        load_adapter(tmp_path / "small", lora)
    _, qonly = make(LoRAConfig(r=4, global_tokens=4, target_modules=["q_proj"]))
    save_adapter(tmp_path / "q", qonly, manifest())
    with pytest.raises(ValueError, match="missing"):
        load_adapter(tmp_path / "q", lora)
    (tmp_path / "q" / "pte_config.json").write_text('{"pte_version": "0.1.0", "lora": {"r": -1}}')
    with pytest.raises(ValueError, match="pte_config.json: field 'lora.r'"):
        read_manifest(tmp_path / "q")
    with pytest.raises(ValueError, match="not a pte adapter"):
        read_manifest(tmp_path)


def test_unknown_targets_rejected():
    with pytest.raises(ValueError, match="no module of the model matches"):
        make(LoRAConfig(target_modules=["c_attn"]))
