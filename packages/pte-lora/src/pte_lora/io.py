"""Adapter files in a layout PEFT users recognise, written atomically.

    adapter_config.json          peft_type LORA, r, lora_alpha, target_modules, base model
                                 (plain LoRA only: see below)
    adapter_model.safetensors    LoRA factors under PEFT key names
    thought_encoder.safetensors  encoder weights (absent when the encoder has none)
    pte_config.json              pte version, LoRA config, encoder and cache policy used,
                                 system prompt and chat-template hash of training

Only an adapter whose encoder carries no state (encoder ``none``: S = I) is a plain LoRA, and
only that one gets ``adapter_config.json``: PEFT, vLLM and merge tools load it with identical
outputs. With a state-carrying encoder (``progressive``, ...) ``y = Wx + (alpha/r) A S B x``
needs S, which those tools cannot compute; a PEFT config would make them load a different model
without a warning, so the file is left out and they refuse the folder ("Can't find
'adapter_config.json'"). pte reads ``pte_config.json`` and never needs the PEFT file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .config import LoRAConfig
from .model import LoRAModel

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ENCODER_WEIGHTS = "thought_encoder.safetensors"
PTE_CONFIG = "pte_config.json"


class AdapterManifest(BaseModel):
    """Contents of pte_config.json."""

    model_config = ConfigDict(extra="allow")

    pte_version: str
    base_model: str = ""
    lora: LoRAConfig
    encoder: str
    encoder_options: dict[str, Any] = {}
    eviction: str = ""
    eviction_options: dict[str, Any] = {}
    # how prompts were built in training: inference must build them the same way
    system: str | None = None
    chat_template_sha256: str | None = None


def save_adapter(
    directory: str | os.PathLike,
    lora: LoRAModel,
    manifest: AdapterManifest,
    encoder: nn.Module | None = None,
) -> Path:
    """Write the adapter to ``directory`` atomically (a temp folder renamed into place)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        suffixes = sorted({name.split(".")[-1] for name in lora.modules})
        peft_config = {
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "r": lora.config.r,
            "lora_alpha": lora.config.lora_alpha,
            "lora_dropout": 0.0,
            "bias": "none",
            "target_modules": suffixes,
            "base_model_name_or_path": manifest.base_model,
            "inference_mode": True,
        }
        if is_plain_lora(encoder):
            (tmp / ADAPTER_CONFIG).write_text(json.dumps(peft_config, indent=2))
        tensors = {k: v.contiguous().cpu() for k, v in lora.peft_state_dict().items()}
        save_file(tensors, str(tmp / ADAPTER_WEIGHTS), metadata={"format": "pt"})
        if encoder is not None:
            enc = {k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}
            if enc:
                save_file(enc, str(tmp / ENCODER_WEIGHTS), metadata={"format": "pt"})
        (tmp / PTE_CONFIG).write_text(manifest.model_dump_json(indent=2))
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def is_plain_lora(encoder: nn.Module | None) -> bool:
    """True when the adapter's state is always the identity (no encoder, or encoder ``none``)."""
    return encoder is None or not getattr(encoder, "carries_state", True)


def read_manifest(directory: str | os.PathLike) -> AdapterManifest:
    """Read and validate ``pte_config.json`` (raises ValueError naming the problem)."""
    path = Path(directory) / PTE_CONFIG
    if not path.is_file():
        raise ValueError(f"{directory}: not a pte adapter (no {PTE_CONFIG})")
    try:
        return AdapterManifest.model_validate_json(path.read_text())
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ValueError(f"{path}: field '{where}': {first['msg']}") from None


def _load(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ValueError(f"{path}: file missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None


def load_adapter(
    directory: str | os.PathLike, lora: LoRAModel, encoder: nn.Module | None = None
) -> AdapterManifest:
    """Load weights saved by :func:`save_adapter` into ``lora`` (and ``encoder``)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    lora.load_peft_state_dict(_load(directory / ADAPTER_WEIGHTS), source=str(directory / ADAPTER_WEIGHTS))
    if encoder is not None:
        expected = encoder.state_dict()
        if expected:
            path = directory / ENCODER_WEIGHTS
            got = _load(path)
            missing = sorted(set(expected) - set(got))
            unexpected = sorted(set(got) - set(expected))
            if missing or unexpected:
                raise ValueError(f"{path}: encoder keys differ; missing {missing[:3]}, unexpected {unexpected[:3]}")
            for key, value in expected.items():
                if got[key].shape != value.shape:
                    raise ValueError(
                        f"{path}: {key} has shape {tuple(got[key].shape)}, encoder expects {tuple(value.shape)}"
                    )
            encoder.load_state_dict(got)
    return manifest
