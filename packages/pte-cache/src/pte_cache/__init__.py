"""pte-cache: a bounded KV cache with pluggable eviction policies.

Exports are imported lazily: the plugin registry reads the hook specs and option models
without importing torch.
"""

import importlib

from .hookspecs import hookimpl, pte_register_eviction_policies

_EXPORTS = {
    "BoundedCache": "cache", "EvictionEvent": "cache", "cache_argument": "cache",
    "CacheView": "policies", "EvictionPolicy": "policies", "Full": "policies", "LRUPromptKeep": "policies",
    "SlidingWindow": "policies", "StreamingLLM": "policies",
    "FullConfig": "config", "PolicyConfig": "config", "StreamingConfig": "config",
}
__all__ = [
    "BoundedCache",
    "CacheView",
    "EvictionEvent",
    "EvictionPolicy",
    "Full",
    "FullConfig",
    "LRUPromptKeep",
    "PolicyConfig",
    "SlidingWindow",
    "StreamingConfig",
    "StreamingLLM",
    "cache_argument",
    "hookimpl",
    "pte_register_eviction_policies",
]
__version__ = "0.1.0"


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'pte_cache' has no attribute {name!r}")
