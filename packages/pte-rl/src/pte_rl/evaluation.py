"""Held-out accuracy of the policy: greedy completions under the training cache, scored by the
training reward. The trainer runs it before training, every ``eval_every`` steps and at the end,
so a run reports how much it changed what the model does on problems it never trained on.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .data import Problem, extra_columns
from .rewards.base import task_correct
from .rollout import SamplingConfig, eviction_counts, eviction_rates, rollout_columns, sample
from .stats import wilson_interval


@torch.no_grad()
def evaluate_counts(pte, tokenizer, problems: list[Problem], encode: Callable[[str], list[int]],
                    policy_factory: Callable[[], object], reward, eos: list[int], max_new_tokens: int,
                    batch_size: int = 64) -> dict[str, float]:
    """Sums over ``problems`` (so ranks can add them up): correct, n, reward, tokens, truncated,
    and the eviction counts of :func:`pte_rl.rollout.eviction_counts`.

    A completion is correct as :func:`~pte_rl.rewards.base.task_correct` says.
    """
    sums = {"correct": 0.0, "n": 0.0, "reward": 0.0, "tokens": 0.0, "truncated": 0.0,
            **eviction_counts([])}
    greedy = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0)
    # longest prompts first, in batches of similar length, so little padding is fed
    order = sorted(range(len(problems)), key=lambda i: -len(encode(problems[i].prompt)))
    for s in range(0, len(order), batch_size):
        batch = [problems[i] for i in order[s : s + batch_size]]
        done = sample(pte, [encode(p.prompt) for p in batch], policy_factory(), greedy, eos,
                      pad_id=tokenizer.pad_token_id or 0)
        texts = [tokenizer.decode(c.token_ids, skip_special_tokens=True) for c in done]
        columns = {**extra_columns(batch), **rollout_columns([p.prompt for p in batch], done)}
        parts = reward.score_parts(texts, [p.answer for p in batch], **columns)
        sums["correct"] += sum(task_correct(parts))
        sums["reward"] += sum(reward.total(parts))
        sums["n"] += len(batch)
        sums["tokens"] += sum(len(c.token_ids) for c in done)
        sums["truncated"] += sum(not c.finished for c in done)
        for k, v in eviction_counts(done).items():
            sums[k] += v
    return sums


def summarize_counts(sums: dict[str, float]) -> dict[str, float]:
    """Metrics (``eval/...``) from the summed counts of :func:`evaluate_counts`."""
    n = max(sums["n"], 1.0)
    low, high = wilson_interval(sums["correct"], sums["n"])
    return {
        "eval/accuracy": sums["correct"] / n,
        "eval/accuracy_ci_low": low,
        "eval/accuracy_ci_high": high,
        "eval/n": int(sums["n"]),
        "eval/reward": sums["reward"] / n,
        "eval/mean_length": sums["tokens"] / n,
        "eval/truncation_rate": sums["truncated"] / n,
        **{f"eval/{k}": v for k, v in eviction_rates(sums).items()},
    }
