"""pte-cache: a bounded KV cache with pluggable eviction policies."""

from .cache import BoundedCache, EvictionEvent, cache_argument
from .hookspecs import hookimpl, pte_register_eviction_policies
from .policies import (
    EvictionPolicy,
    Full,
    FullConfig,
    LRUPromptKeep,
    PolicyConfig,
    SlidingWindow,
    StreamingConfig,
    StreamingLLM,
)

__all__ = [
    "BoundedCache",
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
