"""Attach state-conditioned LoRA layers to a transformers model by module name."""

from __future__ import annotations

import contextlib
import re

import torch
from torch import nn

from .config import LoRAConfig
from .layer import StateLoRALinear

_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def _targets(model: nn.Module, target_modules) -> list[str]:
    names = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or _LAYER.search(name) is None:
            continue  # only decoder-layer linears (never lm_head or embeddings)
        if target_modules == "all-linear" or name.split(".")[-1] in target_modules:
            names.append(name)
    return names


class LoRAModel:
    """Handle over the LoRA layers attached to one model.

    Attributes: ``modules`` (qualified name -> layer), ``layer_of`` (name -> decoder index).
    """

    def __init__(self, model: nn.Module, config: LoRAConfig):
        self.model = model
        self.config = config
        for p in model.parameters():
            p.requires_grad_(False)
        names = _targets(model, config.target_modules)
        if not names:
            raise ValueError(
                f"no module of the model matches target_modules={config.target_modules!r}"
            )
        self.modules: dict[str, StateLoRALinear] = {}
        self.layer_of: dict[str, int] = {}
        for name in names:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            layer = StateLoRALinear(getattr(parent, child), config.r, config.global_tokens,
                                    config.scaling)
            setattr(parent, child, layer)
            self.modules[name] = layer
            self.layer_of[name] = int(_LAYER.search(name).group(1))

    def parameters(self) -> list[nn.Parameter]:
        return [p for m in self.modules.values() for p in (m.lora_A.weight, m.lora_B.weight)]

    def set_states(self, states: list[torch.Tensor | None] | None) -> None:
        """Per decoder layer states for the next forward passes (None: identity everywhere)."""
        self.set_state_pieces(None if states is None else [(0, states)])

    def set_state_pieces(self, pieces: list[tuple[int, list[torch.Tensor | None]]] | None) -> None:
        """Token-dependent states: ``pieces[v] = (first token, per-layer states)``, starts
        increasing from 0; token j of the next ``[batch, q]`` inputs uses the last piece that
        starts at or before j. One piece is :meth:`set_states`."""
        # each layer's S^T is made once per piece, for all its projections
        transposed = [{i: s.mT.contiguous() for i, s in enumerate(states) if s is not None}
                      for _, states in pieces or []]
        for name, module in self.modules.items():
            layer = self.layer_of[name]
            if pieces is None:
                module.set_state(None)
            elif len(pieces) == 1:
                module.set_state(pieces[0][1][layer], transposed[0].get(layer))
            else:
                module.set_pieces([(start, states[layer], t.get(layer))
                                   for (start, states), t in zip(pieces, transposed)])

    @contextlib.contextmanager
    def disabled(self):
        """Run the bare base model (the reference policy)."""
        for m in self.modules.values():
            m.enabled = False
        try:
            yield
        finally:
            for m in self.modules.values():
                m.enabled = True

    def merge(self) -> nn.Module:
        """Fold a plain LoRA (S = I) into the base weights, ``W + (alpha/r) lora_B lora_A``, and
        put the original linears back: returns a standalone model. Only valid when the state is
        the identity (encoder ``none``); the caller checks that. The handle is unusable after."""
        for name, m in self.modules.items():
            if m.lora_B.weight.shape[1] != m.lora_A.weight.shape[0]:
                raise ValueError(f"{name}: G != r, the state cannot be the identity; nothing to merge")
            with torch.no_grad():
                delta = (m.lora_B.weight @ m.lora_A.weight) * m.scaling  # fp32, [out, in]
                m.base.weight.copy_((m.base.weight.float() + delta).to(m.base.weight.dtype))
            parent_name, _, child = name.rpartition(".")
            setattr(self.model.get_submodule(parent_name), child, m.base)
        self.modules = {}
        return self.model

    def peft_state_dict(self) -> dict[str, torch.Tensor]:
        """LoRA factors under PEFT's key names."""
        out = {}
        for name, m in self.modules.items():
            out[f"base_model.model.{name}.lora_A.weight"] = m.lora_A.weight.detach()
            out[f"base_model.model.{name}.lora_B.weight"] = m.lora_B.weight.detach()
        return out

    def load_peft_state_dict(self, tensors: dict[str, torch.Tensor], source: str = "adapter") -> None:
        expected = {k: v.shape for k, v in self.peft_state_dict().items()}
        missing = sorted(set(expected) - set(tensors))
        unexpected = sorted(set(tensors) - set(expected))
        if missing or unexpected:
            raise ValueError(
                f"{source}: LoRA keys do not match this model; missing {missing[:3]}"
                f"{' ...' if len(missing) > 3 else ''} ({len(missing)}), unexpected "
                f"{unexpected[:3]}{' ...' if len(unexpected) > 3 else ''} ({len(unexpected)})"
            )
        for key, shape in expected.items():
            if tuple(tensors[key].shape) != tuple(shape):
                raise ValueError(
                    f"{source}: {key} has shape {tuple(tensors[key].shape)}, model expects {tuple(shape)}"
                )
        with torch.no_grad():
            for name, m in self.modules.items():
                m.lora_A.weight.copy_(tensors[f"base_model.model.{name}.lora_A.weight"])
                m.lora_B.weight.copy_(tensors[f"base_model.model.{name}.lora_B.weight"])


def attach_lora(model: nn.Module, config: LoRAConfig | None = None) -> LoRAModel:
    """Freeze ``model`` and wrap its target linears with :class:`StateLoRALinear`."""
    return LoRAModel(model, config or LoRAConfig())
