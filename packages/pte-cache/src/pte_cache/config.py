"""Options of the built-in eviction policies (pydantic; importable without torch, so the plugin
registry and `pte --help` never load torch just to validate names and options)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class PolicyConfig(BaseModel):
    """Options shared by the built-in policies."""

    model_config = ConfigDict(extra="forbid")

    cache_window: int = Field(
        256, gt=0, description="Total cache budget per row in tokens, prompt included."
    )
    evict_ratio: float = Field(
        0.25, description="Fraction of the generated-token window evicted at once on saturation."
    )
    dynamic_window: bool = Field(
        False,
        description="Generated-token window = longest prompt of the micro-batch, fixed at prefill "
        "(the paper's training setting); cache_window is then ignored for generated tokens.",
    )

    @field_validator("evict_ratio")
    @classmethod
    def _ratio_in_range(cls, v: float) -> float:
        if not (0.0 < v <= 1.0):
            raise ValueError(f"evict_ratio must be in (0, 1], got {v}")
        return v


class StreamingConfig(PolicyConfig):
    sink_tokens: int = Field(4, ge=0, description="First tokens of each row that never leave.")
    stream_prompt: bool = Field(
        False,
        description="Read the prompt as a stream through the window: each prompt token attends to the "
        "sinks and the cache_window - sink_tokens tokens before it (itself included), what the cache would "
        "hold had the prompt been fed token by token (deeper layers still reach further back, through "
        "the layers below). Off: the prefill attends over the whole prompt, so the tokens that stay "
        "carry what the evicted ones said.",
    )

    @model_validator(mode="after")
    def _stream_needs_a_fixed_window(self):
        if self.stream_prompt and self.dynamic_window:
            raise ValueError("stream_prompt needs a fixed cache_window (--cache-window N; dynamic_window makes the window the "
                             "prompt's own length, so nothing would stream)")
        return self


class FullConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
