"""A run's settings: the one place each default, range and help text of `pte train` is declared.

:class:`TrainConfig` holds the optimisation, sampling and output settings; :class:`RunConfig`
holds a whole run (model, cache policy, encoder, LoRA, rewards, data, prompt, training). The
``pte train`` options read their default, range and help from these fields, ``--dry-run`` prints
a RunConfig, ``config.json`` and every checkpoint record it, and the trainer receives it.
Pydantic only: importable without torch.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pte_lora.config import LoRAConfig


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output_dir: str = Field("runs/pte", description="Checkpoints, metrics, TensorBoard.")
    max_steps: int = Field(10, gt=0, description="Optimizer steps.")
    prompts_per_step: int = Field(4, gt=0, description="Prompts per optimizer step on each rank.")
    group_size: int = Field(8, ge=2, description="Completions per prompt (TRL: num_generations).")
    max_new_tokens: int = Field(96, gt=0, description="Longest completion, in tokens.")
    temperature: float = Field(0.7, gt=0, description="Sampling temperature of the rollouts.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling of the rollouts (1: off).")
    learning_rate: float = Field(5e-4, gt=0, description="AdamW learning rate of the adapter and encoder.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    lr_scheduler: Literal["constant", "linear", "cosine"] = Field("constant", description="Learning-rate schedule after warm-up.")
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps.")
    max_grad_norm: float = Field(1.0, gt=0, description="Clip the gradient to this global norm.")
    beta: float = Field(0.001, ge=0, description="KL weight to the full-cache base model (0 skips the reference pass).")
    epsilon: float = Field(0.2, gt=0, description="Lower clip of the probability ratio.")
    epsilon_high: float | None = Field(None, gt=0, description="Upper clip (DAPO uses 0.28) [default: epsilon].")
    entropy_coef: float = Field(0.0, ge=0, description="Entropy bonus: each token's loss loses this times its "
                                "entropy (verl's entropy_coeff; against entropy collapse). 0: off.")
    num_iterations: int = Field(1, gt=0, description="Optimizer steps per batch of rollouts (ratio clipping matters when > 1).")
    loss_type: Literal["grpo", "dr_grpo", "dapo"] = Field("dapo", description="How token losses are averaged (as TRL's loss_type).")
    scale_rewards: bool = Field(True, description="Divide advantages by the group std (off: Dr. GRPO).")
    mask_truncated: bool = Field(False, description="Completions cut at --max-new-tokens get no loss.")
    rollout_sub_batch_size: int = Field(
        32, gt=0, description="Rows per rollout pass (decode streams the weights once per step, so wider is nearly free).")
    reference_sub_batch_size: int = Field(
        4, gt=0, description="Rows per full-cache reference pass (its cache grows with length).")
    replay_sub_batch_size: int = Field(4, gt=0, description="Rows per replay pass with gradients (bounds backward memory).")
    replay_chunk: int = Field(64, gt=0, description="Max tokens per replay pass; a pass may run through an eviction event "
                              "that evicts only earlier tokens (larger: fewer passes, more live activations).")
    replay_graph: Literal["window", "chunk", "exact"] = Field(
        "window", description="How far a chunk's loss reaches back in replay: window = the prompt and every "
        "cached token (memory bounded by the window); chunk = the chunk alone (cheapest, biased); exact = "
        "everything (memory grows with length; for checks).")
    save_every: int = Field(0, ge=0, description="Checkpoint every N steps (0: only at the end).")
    save_total_limit: int | None = Field(None, ge=1, description="Keep only the newest K checkpoints [default: all].")
    log_completions: int = Field(0, ge=0, description="Write N sampled completions per step (text, reward parts, "
                                 "length, evictions) to OUTPUT_DIR/completions.jsonl and TensorBoard.")
    eval_every: int = Field(0, ge=0, description="Held-out eval every N steps (0: only before and after training).")
    eval_batch_size: int = Field(64, gt=0, description="Rows per greedy held-out eval batch.")
    eval_full_cache: bool = Field(True, description="Also score the held-out set with the full cache (eval_full/... "
                                  "metrics), beside the training cache (eval/...).")
    seed: int = Field(0, description="Seeds sampling, data order and the initialisation of the adapter and "
                      "the thought encoder.")
    resume: bool = Field(False, description="Continue from the latest complete checkpoint in --output-dir "
                         "(rank 0's, for every rank).")
    init_adapter: str | None = Field(None, description="Start from this saved adapter folder (LoRA factors and "
                                     "thought encoder: a warm start, or a checkpoint's adapter/) instead of a fresh "
                                     "one; its base model, LoRA settings and encoder must be this run's. The "
                                     "optimizer starts fresh; a checkpoint --resume finds replaces it.")
    profile_steps: int = Field(0, ge=0, description="Write a torch profiler trace of the first N steps to OUTPUT_DIR/profile.")
    compile: bool = Field(False, description="Decode rollouts with one compiled step (a static cache; CUDA "
                          "graphs on a GPU), or, for models outside the lean forward's Llama family, compile "
                          "the blocks the cache does not touch (MLP, norms).")
    tensorboard: bool = Field(True, description="Also log to TensorBoard (metrics.jsonl is always written).")


class PluginChoice(BaseModel):
    """A registry name and the validated options of that plugin."""

    model_config = ConfigDict(extra="forbid")

    name: str
    options: dict[str, Any] = {}


class RewardChoice(PluginChoice):
    """A reward: registry name, or a function ``FILE.py:FN`` / ``MODULE:FN``, and its weight."""

    weight: float = 1.0


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    train: str | None = Field(None, description="Training data file or datasets folder (None: built-in arithmetic).")
    eval: str | None = Field(None, description="Held-out data (None: built-in held-out arithmetic with built-in "
                             "training data, else no held-out eval).")
    prompt_field: str = Field("prompt", description="Column holding the prompt (a string, or chat messages).")
    answer_field: str = Field("answer", description="Column holding the reference answer.")
    skip_bad_rows: bool = Field(False, description="Report and skip malformed rows instead of stopping.")


class RunConfig(BaseModel):
    """Everything one training run needs, validated."""

    model_config = ConfigDict(extra="forbid")

    backend: PluginChoice
    eviction: PluginChoice
    encoder: PluginChoice
    lora: LoRAConfig
    rewards: list[RewardChoice] = Field(min_length=1)
    data: DataConfig = DataConfig()
    system: str | None = Field(None, description="System message for the chat template.")
    train: TrainConfig = TrainConfig()
