"""Built-in eviction policies, registered through the ``pte`` entry point like any plugin."""

from .config import FullConfig, PolicyConfig, StreamingConfig
from .hookspecs import hookimpl


def _policy(name: str):
    """Factory that imports the policy (and torch) only when one is built."""

    def build(config):
        from . import policies

        return getattr(policies, name)(config)

    return build


@hookimpl
def pte_register_eviction_policies(register):
    register(
        "lru-prompt-keep",
        _policy("LRUPromptKeep"),
        config=PolicyConfig,
        help="Keep every prompt token; slide a window over generated tokens (the paper's policy).",
    )
    register(
        "sliding-window",
        _policy("SlidingWindow"),
        config=PolicyConfig,
        help="Plain window over all tokens, prompt included.",
    )
    register(
        "streaming-llm",
        _policy("StreamingLLM"),
        config=StreamingConfig,
        help="Attention-sink tokens plus the most recent tokens.",
    )
    register("full", _policy("Full"), config=FullConfig, help="Never evict (full-cache baseline).")
