"""GRPO maths: group advantages, per-token clipped objective with k3 KL, loss weights.

Loss aggregation (TRL's meanings), expressed as a weight per completion token so the loss can
be backpropagated chunk by chunk during replay:
    grpo     mean over each completion's tokens, then mean over completions
    dr_grpo  sum over tokens / (completions * max_completion_length)
    dapo     sum over tokens / (active tokens in the whole step, all ranks)
"""

from __future__ import annotations

from typing import Literal

import torch

LossType = Literal["grpo", "dr_grpo", "dapo"]


def group_advantages(rewards: torch.Tensor, group_size: int, scale: bool = True, eps: float = 1e-6):
    """(r - group mean) / sqrt(group var + eps); population variance. Returns (adv, zero_std mask)."""
    grouped = rewards.view(-1, group_size)
    mean = grouped.mean(1, keepdim=True)
    var = grouped.var(1, unbiased=False, keepdim=True)
    adv = grouped - mean
    if scale:
        adv = adv / torch.sqrt(var + eps)
    zero_std = (var.squeeze(1) == 0)
    return adv.flatten(), zero_std


def token_weights(lengths: torch.Tensor, loss_type: LossType, max_completion_length: int,
                  total_completions: int, total_tokens: int) -> torch.Tensor:
    """Weight of each token of each completion ``[N]`` (per-token weight, same within a row)."""
    lengths = lengths.float().clamp(min=1)
    if loss_type == "grpo":
        return 1.0 / (lengths * total_completions)
    if loss_type == "dr_grpo":
        return torch.full_like(lengths, 1.0 / (total_completions * max_completion_length))
    if loss_type == "dapo":
        return torch.full_like(lengths, 1.0 / max(total_tokens, 1))
    raise ValueError(f"unknown loss_type {loss_type!r}; choose grpo, dr_grpo or dapo")


def per_token_loss(new_lp, old_lp, ref_lp, advantages, beta: float, epsilon: float,
                   epsilon_high: float | None = None):
    """Clipped surrogate + beta * k3 KL per token. ``advantages`` is ``[B]``; others ``[B, n]``.

    Returns ``(loss, stats)`` where stats holds per-token tensors for metrics (no grad).
    """
    eps_hi = epsilon if epsilon_high is None else epsilon_high
    ratio = torch.exp(new_lp - old_lp)
    adv = advantages[:, None]
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + eps_hi)
    loss = -torch.minimum(ratio * adv, clipped * adv)
    stats = {}
    if beta != 0.0 and ref_lp is not None:
        delta = ref_lp - new_lp
        kl = torch.exp(delta) - delta - 1
        loss = loss + beta * kl
        stats["kl"] = kl.detach()
    with torch.no_grad():
        stats["clip_low"] = ((ratio < 1 - epsilon) & (adv < 0)).float()
        stats["clip_high"] = ((ratio > 1 + eps_hi) & (adv > 0)).float()
    return loss, stats
