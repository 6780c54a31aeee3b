"""pte-thought: encoders that fold evicted keys/values into a fixed-size latent state."""

from .diagnostics import StateProbe, effective_rank, top_energy
from .encoders import (
    GlobalOnlyEncoder,
    IdentityConfig,
    IdentityEncoder,
    ProgressiveEncoder,
    ThoughtConfig,
    ThoughtEncoder,
    ThoughtState,
    normalize,
)
from .hookspecs import hookimpl, pte_register_thought_encoders

__all__ = [
    "GlobalOnlyEncoder",
    "IdentityConfig",
    "IdentityEncoder",
    "ProgressiveEncoder",
    "ThoughtConfig",
    "ThoughtEncoder",
    "StateProbe",
    "ThoughtState",
    "effective_rank",
    "hookimpl",
    "normalize",
    "pte_register_thought_encoders",
    "top_energy",
]
__version__ = "0.1.0"
