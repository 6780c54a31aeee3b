"""Per-step metrics: JSONL always, TensorBoard when the tensorboard package is installed."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

import torch


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


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
            handle.write(json.dumps({"step": step, **metrics}) + "\n")
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
            for row in rows:
                handle.write(json.dumps({"step": step, **row}, ensure_ascii=False) + "\n")
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
                path.write_text("".join(line + "\n" for line in keep), encoding="utf-8")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
