"""LoRA configuration (field names follow PEFT's LoraConfig where they mean the same)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


class LoRAConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(32, gt=0, description="Rank of B (r x d_in).")
    lora_alpha: float = Field(32.0, gt=0, description="Scale numerator: delta = (alpha/r) A S B x.")
    target_modules: list[str] | str = Field(
        default_factory=lambda: list(DEFAULT_TARGETS),
        description='Module name suffixes to adapt, or "all-linear".',
    )
    global_tokens: int = Field(32, gt=0, description="G: columns of A (rows of the state S).")

    @property
    def scaling(self) -> float:
        return self.lora_alpha / self.r
