"""Wall time and held-out result of the default job, `pte train` with no options.

    python benchmarks/default_job.py [--seed 0] [--avx2-only] [--out runs/default-job]

The target is <= 10 minutes on 2 CPU cores, also on the slowest machine kind this project gets
(AVX2-only, no bf16 instructions). ``--avx2-only`` makes a faster CPU run the code paths of such
a machine: ATen, oneDNN and MKL are limited to AVX2 and the base model stays fp32 (what
``--dtype auto`` picks there). It is a lower bound for that machine, not a substitute: the
machine's own clock, caches and memory still differ. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import AVX2_ONLY, machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--avx2-only", action="store_true", help="run the kernels of an AVX2-only CPU, fp32 base")
    ap.add_argument("--out", default="runs/default-job")
    args = ap.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(AVX2_ONLY if args.avx2_only else {})}
    cmd = [sys.executable, "-m", "pte_cli", "train", "--seed", str(args.seed), "--output-dir", args.out,
           "--no-tensorboard"] + (["--dtype", "float32"] if args.avx2_only else [])
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(done.stderr[-2000:])
    rows = [json.loads(x) for x in (Path(args.out) / "metrics.jsonl").read_text().splitlines() if x.strip()]
    steps = [r for r in rows if "step_time" in r]
    evals = [r for r in rows if "eval/accuracy" in r]
    print(json.dumps({
        "machine": {**machine(), "isa_limits": AVX2_ONLY if args.avx2_only else {}},
        "seed": args.seed, "wall_seconds": round(wall, 1), "steps": len(steps),
        "seconds_per_step": round(sum(r["step_time"] for r in steps) / len(steps), 2),
        "time": {k: round(sum(r[f"time/{k}"] for r in steps), 1) for k in ("rollout", "reference", "train")},
        "eval_seconds": round(sum(r["time/eval"] for r in evals), 1),
        "heldout_before": evals[0]["eval/accuracy"], "heldout_after": evals[-1]["eval/accuracy"],
        "heldout_full_cache_before": evals[0].get("eval_full/accuracy"),
        "heldout_full_cache_after": evals[-1].get("eval_full/accuracy"),
        "heldout_n": evals[-1]["eval/n"],
        # does the run exercise the method: eviction events (= state updates) and their size, per step
        "evictions_per_completion": [round(r["evictions_per_completion"], 2) for r in steps],
        "evicted_tokens_per_event": [round(r["evicted_tokens_per_event"], 2) for r in steps],
        "mean_length": [round(r["completions/mean_length"], 1) for r in steps],
        "result_line": done.stdout.strip().splitlines()[-1],
    }))


if __name__ == "__main__":
    main()
