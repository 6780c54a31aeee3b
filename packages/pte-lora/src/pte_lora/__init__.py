"""pte-lora: state-conditioned LoRA layers and PEFT-compatible adapter files.

Exports are imported lazily: the config is plain pydantic, so run configs (and ``pte --help``)
can name a :class:`LoRAConfig` without importing torch.
"""

import importlib

_EXPORTS = {
    "DEFAULT_TARGETS": "config", "LoRAConfig": "config",
    "AdapterManifest": "io", "is_plain_lora": "io", "load_adapter": "io", "read_manifest": "io",
    "save_adapter": "io",
    "StateLoRALinear": "layer",
    "LoRAModel": "model", "attach_lora": "model",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'pte_lora' has no attribute {name!r}")
