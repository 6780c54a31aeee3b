"""GRPO maths: group advantages, per-token clipped objective with k3 KL, loss weights.

Loss aggregation (TRL's meanings), expressed as a weight per completion token so the loss can
be backpropagated chunk by chunk during replay:
    grpo     mean over each completion's tokens, then mean over completions
    dr_grpo  sum over tokens / (completions * max_completion_length)
    dapo     sum over tokens / (active tokens in the whole step, all ranks)
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass
class StepStats:
    """Sums over a step's replayed tokens (every chunk and row adds to them); the metrics divide
    by ``tokens`` (``loss`` by the iterations). Across ranks the resulting metrics are averaged."""

    loss: float = 0.0
    kl: float = 0.0
    clip_low: float = 0.0
    clip_high: float = 0.0
    entropy: float = 0.0
    tokens: float = 0.0


@dataclass
class Trajectory:
    """One step's rollouts on this rank and everything the loss needs about them.

    Rows are completions (``N`` = prompts x group size); log-prob tensors are ``[N, width]`` with
    ``width`` the longest completion. ``old_lp`` (pi_old) is the first replay's own log-probs,
    detached, as in TRL (the trainer stores what that replay returns): the ratio starts at exactly
    1 even where the sampler's numerics differ from replay's (bf16 kernels, other batch shapes);
    ``sampled_lp - old_lp`` is reported as ``logprob_mismatch``.
    """

    completions: list
    rewards: torch.Tensor  # [N]
    advantages: torch.Tensor  # [N]
    zero_std: torch.Tensor  # [N / group] groups without reward spread
    lengths: torch.Tensor  # [N]
    truncated: torch.Tensor  # [N] hit max_new_tokens
    weights: torch.Tensor  # [N] loss weight of each of a row's tokens (0: row masked)
    sampled_lp: torch.Tensor  # [N, width]
    old_lp: torch.Tensor  # [N, width], the first replay's log-probs
    ref_lp: torch.Tensor | None = None  # [N, width] full-cache base model (None: beta = 0)
    # [N] rows the replay runs (None: all). With beta = 0 and no entropy bonus a group without
    # reward spread has zero advantage and nothing else in its loss, so its rows are not replayed
    replayed: torch.Tensor | None = None
    stats: StepStats = field(default_factory=StepStats)

    def chunk_loss(self, rows: torch.Tensor, config, first: bool, lp, mask, cols, entropy=None) -> torch.Tensor:
        """Weighted loss of replayed log-probs ``lp`` ([len(rows), len(cols)], with grad) of
        ``rows`` at token columns ``cols``; accumulates the metric sums in ``stats``. In the first
        iteration pi_old is this replay itself (ratio 1). ``entropy`` (with grad, when
        ``config.entropy_coef`` > 0): each token's loss loses ``entropy_coef x entropy``,
        aggregated with the same token weights (verl's entropy bonus)."""
        old = lp.detach() if first else self.old_lp[rows][:, cols]
        ref = self.ref_lp[rows][:, cols] if self.ref_lp is not None else None
        loss_tok, st = per_token_loss(lp, old, ref, self.advantages[rows], config.beta, config.epsilon,
                                      config.epsilon_high)
        if entropy is not None and config.entropy_coef:
            loss_tok = loss_tok - config.entropy_coef * entropy
        loss = (loss_tok * self.weights[rows][:, None] * mask).sum()
        m = mask.float()
        self.stats.loss += float(loss.detach())
        self.stats.tokens += float(m.sum())
        self.stats.clip_low += float((st["clip_low"] * m).sum())
        self.stats.clip_high += float((st["clip_high"] * m).sum())
        if "kl" in st:
            self.stats.kl += float((st["kl"] * m).sum())
        return loss
