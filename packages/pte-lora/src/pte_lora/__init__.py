"""pte-lora: state-conditioned LoRA layers and PEFT-compatible adapter files."""

from .config import DEFAULT_TARGETS, LoRAConfig
from .io import AdapterManifest, is_plain_lora, load_adapter, read_manifest, save_adapter
from .layer import StateLoRALinear
from .model import LoRAModel, attach_lora

__all__ = [
    "DEFAULT_TARGETS",
    "AdapterManifest",
    "LoRAConfig",
    "LoRAModel",
    "StateLoRALinear",
    "attach_lora",
    "is_plain_lora",
    "load_adapter",
    "read_manifest",
    "save_adapter",
]
__version__ = "0.1.0"
