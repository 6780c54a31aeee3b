"""Options of the built-in thought encoders (pydantic; importable without torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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


class GlobalOnlyConfig(ThoughtConfig):
    """The global-only ablation: the state is S_g and never changes."""

    @model_validator(mode="after")
    def _not_inert(self):
        if self.init == "zero":
            raise ValueError("init=zero with global-only keeps the state at S = 0 for good (it is never "
                             "updated), so the adapter could never change the model; use init=global, or the "
                             "progressive encoder for the #Global-0 ablation")
        return self


class IdentityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rank: int = Field(32, gt=0, description="LoRA rank; the state is the r x r identity.")
