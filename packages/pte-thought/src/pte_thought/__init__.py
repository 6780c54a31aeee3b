"""pte-thought: encoders that fold evicted keys/values into a fixed-size latent state.

Exports are imported lazily: the plugin registry reads the hook specs and option models
without importing torch.
"""

import importlib

from .hookspecs import hookimpl, pte_register_thought_encoders

_EXPORTS = {
    "StateProbe": "diagnostics", "effective_rank": "diagnostics", "top_energy": "diagnostics",
    "GlobalOnlyEncoder": "encoders", "IdentityEncoder": "encoders", "ProgressiveEncoder": "encoders",
    "ThoughtEncoder": "encoders", "ThoughtState": "encoders", "normalize": "encoders",
    "GlobalOnlyConfig": "config", "IdentityConfig": "config", "ThoughtConfig": "config",
}
__all__ = [
    "GlobalOnlyConfig",
    "GlobalOnlyEncoder",
    "IdentityConfig",
    "IdentityEncoder",
    "ProgressiveEncoder",
    "StateProbe",
    "ThoughtConfig",
    "ThoughtEncoder",
    "ThoughtState",
    "effective_rank",
    "hookimpl",
    "normalize",
    "pte_register_thought_encoders",
    "top_energy",
]
__version__ = "0.1.0"


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'pte_thought' has no attribute {name!r}")
