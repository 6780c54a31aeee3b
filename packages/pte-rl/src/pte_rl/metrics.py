"""Per-step metrics: JSONL always, TensorBoard when the tensorboard package is installed."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

import torch

from .files import jsonl_line, jsonl_text, write_text_atomic
from .rewards.base import count_failures, task_correct
from .rollout import eviction_counts, eviction_rates


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# how a step's metric combines across ranks; every metric not named here is the mean of the ranks'
REDUCTIONS = {"completions/max_length": "max", "max_cache_tokens": "max", "peak_memory_mb": "max",
              "step_time": "max", "reward_failures": "sum", "groups_not_replayed": "sum"}


def step_metrics(batch, parts: dict, num_iterations: int, times: dict, *, skipped: bool, grad_norm: float,
                 learning_rate: float, device: torch.device, dtype: torch.dtype) -> dict:
    """The logged metrics of one step (names follow TRL's GRPOTrainer where they mean the same)."""
    st, comps, lengths = batch.stats, batch.completions, batch.lengths
    rewards = batch.rewards
    n_tok = max(st.tokens, 1.0)
    replayed = batch.replayed if batch.replayed is not None else torch.ones(len(comps), dtype=torch.bool)
    mismatch = (batch.old_lp - batch.sampled_lp).abs()[replayed.to(batch.old_lp.device)]
    # measured by the replay: a skipped step has none of them (absent, not 0.0)
    measured = {} if skipped else {
        "kl": st.kl / n_tok,
        "entropy": st.entropy / n_tok,
        "loss": st.loss / num_iterations,
        "grad_norm": grad_norm,
        "clip_ratio/low_mean": st.clip_low / n_tok,
        "clip_ratio/high_mean": st.clip_high / n_tok,
        "logprob_mismatch": float(mismatch.sum()) / max(int(lengths[replayed].sum()), 1),
    }
    return {
        "reward": float(rewards.mean()),
        "reward_std": float(rewards.std()) if len(rewards) > 1 else 0.0,
        **{f"reward/{name}/mean": sum(r.value for r in res) / len(res) for name, res in parts.items()},
        "accuracy": float(sum(task_correct(parts)) / len(comps)),
        "frac_reward_zero_std": float(batch.zero_std.float().mean()),
        "skipped_step": float(skipped),
        "learning_rate": learning_rate,
        "completions/mean_length": float(lengths.float().mean()),
        "completions/max_length": int(lengths.max()),
        "completions/clipped_ratio": float(batch.truncated.float().mean()),
        **eviction_rates(eviction_counts(comps)),
        "max_cache_tokens": max(x.max_cache_tokens for x in comps),
        "tokens_per_second": float(lengths.sum()) / max(times["rollout"], 1e-9),
        "time/rollout": times["rollout"],
        "time/reference": times["reference"],
        "time/train": times["train"],
        "step_time": times["step"],
        "peak_memory_mb": peak_memory_mb(device),
        "dtype": str(dtype).removeprefix("torch."),  # the frozen base's (adapters are fp32)
        "reward_failures": count_failures(parts),
        # groups without reward spread that were not replayed (beta 0, no entropy bonus: no gradient)
        "groups_not_replayed": int(batch.zero_std.sum()) if not skipped and not bool(replayed.all()) else 0,
        **measured,
    }


class MetricsLogger:
    def __init__(self, output_dir: str | Path, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(output_dir) / "metrics.jsonl"
        self.completions_path = Path(output_dir) / "completions.jsonl"
        self.writer = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(Path(output_dir) / "tensorboard"))
            except ImportError:
                print("note: TensorBoard logging is off (pip install tensorboard to enable); "
                      f"metrics still go to {self.path}", file=sys.stderr)

    def log(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(jsonl_line({"step": step, **metrics}))
        if self.writer is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, step)
            self.writer.flush()

    def log_completions(self, step: int, rows: list[dict]) -> None:
        """Sampled completions of a step, one JSON line each (and a TensorBoard text panel)."""
        if not self.enabled or not rows:
            return
        with open(self.completions_path, "a", encoding="utf-8") as handle:
            handle.write(jsonl_text({"step": step, **row} for row in rows))
        if self.writer is not None:
            text = "\n\n".join(f"**{r['prompt_id']}** reward {r['reward']:.3g}, {r['length']} tokens, "
                                f"{r['evictions']} evictions\n\n    {r['completion']}" for r in rows)
            self.writer.add_text("completions", text, step)
            self.writer.flush()

    def read(self, step: int) -> dict | None:
        """The logged metrics of ``step`` (the last line for it), or None."""
        if not self.path.exists():
            return None
        found = None
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if row.get("step") == step:
                    found = {k: v for k, v in row.items() if k != "step"}
        return found

    def truncate_after(self, step: int) -> None:
        """On resume, drop lines of steps that will be redone."""
        if not self.enabled:
            return
        for path in (self.path, self.completions_path):
            if path.exists():
                keep = [line for line in path.read_text(encoding="utf-8").splitlines()
                        if line.strip() and json.loads(line).get("step", 0) <= step]
                write_text_atomic(path, "".join(line + "\n" for line in keep))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
