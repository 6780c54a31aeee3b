"""Built-in eviction policies, registered through the ``pte`` entry point like any plugin."""

from .hookspecs import hookimpl
from .policies import (
    Full,
    FullConfig,
    LRUPromptKeep,
    PolicyConfig,
    SlidingWindow,
    StreamingConfig,
    StreamingLLM,
)


@hookimpl
def pte_register_eviction_policies(register):
    register(
        "lru-prompt-keep",
        LRUPromptKeep,
        config=PolicyConfig,
        help="Keep every prompt token; slide a window over generated tokens (the paper's policy).",
    )
    register(
        "sliding-window",
        SlidingWindow,
        config=PolicyConfig,
        help="Plain window over all tokens, prompt included.",
    )
    register(
        "streaming-llm",
        StreamingLLM,
        config=StreamingConfig,
        help="Attention-sink tokens plus the most recent tokens.",
    )
    register("full", Full, config=FullConfig, help="Never evict (full-cache baseline).")
