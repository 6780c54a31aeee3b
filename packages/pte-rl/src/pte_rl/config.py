"""Training options: the one place each default of `pte train` is declared (the click options
read their defaults from here). Pydantic only, importable without torch."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output_dir: str = "runs/pte"
    max_steps: int = Field(10, gt=0)
    prompts_per_step: int = Field(4, gt=0, description="Prompts per step on each rank.")
    group_size: int = Field(8, ge=2)
    max_new_tokens: int = Field(48, gt=0)
    temperature: float = Field(0.7, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    learning_rate: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    lr_scheduler: Literal["constant", "linear", "cosine"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    beta: float = Field(0.001, ge=0, description="KL weight to the full-cache base model.")
    epsilon: float = Field(0.2, gt=0)
    epsilon_high: float | None = Field(None, gt=0)
    num_iterations: int = Field(1, gt=0)
    loss_type: Literal["grpo", "dr_grpo", "dapo"] = "dapo"
    scale_rewards: bool = True
    mask_truncated: bool = False
    rollout_sub_batch_size: int = Field(32, gt=0, description="Rows per rollout pass (decode is bound by streaming the weights, so wider is nearly free).")
    reference_sub_batch_size: int = Field(
        4, gt=0, description="Rows per reference pass: the reference uses the full cache, so this "
        "bounds the only memory that grows with completion length.")
    replay_sub_batch_size: int = Field(8, gt=0, description="Rows per replay (backward) pass.")
    replay_chunk: int = Field(32, gt=0, description="Max tokens per replay chunk.")
    replay_graph: Literal["window", "chunk", "exact"] = Field(
        "window", description="How far a chunk's loss reaches back in replay: window (prompt and every "
        "cached token), chunk (the chunk alone), exact (everything; memory grows with length).")
    save_every: int = Field(0, ge=0, description="Checkpoint every N steps (0: only at the end).")
    save_total_limit: int | None = Field(None, ge=1, description="Keep only the newest K checkpoints.")
    log_completions: int = Field(0, ge=0, description="Sampled completions per step written to "
                                 "completions.jsonl (and TensorBoard text).")
    eval_every: int = Field(0, ge=0, description="Held-out eval every N steps (0: only before and after "
                            "training); needs eval problems.")
    eval_batch_size: int = Field(64, gt=0, description="Rows per greedy held-out eval batch.")
    seed: int = 0
    resume: bool = False
    profile_steps: int = Field(0, ge=0)
    compile: bool = Field(False, description="torch.compile the cache-free blocks (MLP, norms).")
    tensorboard: bool = True


def default(field: str):
    """The declared default of a :class:`TrainConfig` field."""
    return TrainConfig.model_fields[field].default
