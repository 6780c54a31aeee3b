"""Built-in thought encoders, registered through the ``pte`` entry point."""

from .config import GlobalOnlyConfig, IdentityConfig, ThoughtConfig
from .hookspecs import hookimpl


def _encoder(name: str):
    """Factory that imports the encoder (and torch) only when one is built."""

    def build(config):
        from . import encoders

        return getattr(encoders, name)(config)

    return build


@hookimpl
def pte_register_thought_encoders(register):
    register(
        "progressive",
        _encoder("ProgressiveEncoder"),
        config=ThoughtConfig,
        help="Fold evicted K/V into the LoRA state at every eviction (the paper's method).",
    )
    register("none", _encoder("IdentityEncoder"), config=IdentityConfig, help="S = I: plain LoRA (LoRA_c baseline).")
    register(
        "global-only",
        _encoder("GlobalOnlyEncoder"),
        config=GlobalOnlyConfig,
        help="State from the global tokens only, never updated (ablation).",
    )
