"""Options of the built-in thought encoders (pydantic; importable without torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ThoughtConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    global_tokens: int = Field(32, gt=0, description="G: learnable global tokens per layer.")
    rank: int = Field(32, gt=0, description="r: latent dimension (the LoRA rank).")
    init: Literal["global", "zero"] = Field("global", description="Initial state before eviction.")
    attention: Literal["softmax", "bilinear"] = Field(
        "softmax", description="softmax: normalised softmax over evicted tokens; bilinear: eq. 4 as printed."
    )
    sharpness: float = Field(3.0, gt=0, description="Softmax scale on the RMS-normalised latent scores.")
    event_weight_tokens: float = Field(
        4.0, ge=0, description="An event of m evicted tokens moves the memory by m / (m + this) of a full "
        "update (0: every event the same weight).")


class IdentityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rank: int = Field(32, gt=0, description="LoRA rank; the state is the r x r identity.")
