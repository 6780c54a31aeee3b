"""Built-in thought encoders, registered through the ``pte`` entry point."""

from .encoders import (
    GlobalOnlyEncoder,
    IdentityConfig,
    IdentityEncoder,
    ProgressiveEncoder,
    ThoughtConfig,
)
from .hookspecs import hookimpl


@hookimpl
def pte_register_thought_encoders(register):
    register(
        "progressive",
        ProgressiveEncoder,
        config=ThoughtConfig,
        help="Fold evicted K/V into the LoRA state at every eviction (the paper's method).",
    )
    register("none", IdentityEncoder, config=IdentityConfig, help="S = I: plain LoRA (LoRA_c baseline).")
    register(
        "global-only",
        GlobalOnlyEncoder,
        config=ThoughtConfig,
        help="State from the global tokens only, never updated (ablation).",
    )
