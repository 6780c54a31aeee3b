"""Math reward throughput: completions/s for pte's `math` reward and for Math-Verify.

    pip install math-verify        # only for the comparison; pte never needs it
    python benchmarks/reward_throughput.py [--n 4000] [--data ../shared/data/math]

The corpus: ~300-token completions (reasoning filler + a boxed answer, half correct and half
perturbed) built from the benchmark gold answers. Prints JSON with completions/s, agreement with
Math-Verify, and accuracy against the known labels; and start-up separately: the wall time of
`pte score --reward math` on --startup-rows rows in a fresh process (interpreter, CLI, registry,
worker processes and scoring), the time until the worker pool is ready, and each worker's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine  # noqa: E402

FILLER = ("Let us think step by step. We first rewrite the expression, then simplify each term "
          "carefully and check the arithmetic twice before combining the results. ")


def corpus(data: Path, n: int, seed: int = 0):
    rows = []
    for path in sorted(data.glob("*.jsonl")):
        rows += [json.loads(x) for x in path.read_text().split("\n") if x.strip()]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        r = rng.choice(rows)
        gold = r["answer"]
        correct = rng.random() < 0.5
        pred = gold if correct else _wrong(gold, rng)
        text = FILLER * 8 + f"Therefore the final answer is $\\boxed{{{pred}}}$."
        out.append((text, gold, correct and pred == gold))
    return out


def _wrong(gold: str, rng) -> str:
    import re

    m = re.fullmatch(r"-?\d+", gold.strip())
    if m:
        return str(int(gold) + rng.choice([-2, -1, 1, 2]))
    return gold + "+1"


def _peak_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _pte_score_wall(items, workers: int) -> float:
    """Seconds for `pte score` on these rows in a fresh process, as a user runs it."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "rows.jsonl"
        rows.write_text("".join(json.dumps({"completion": t, "answer": g}) + "\n" for t, g, _ in items))
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pte_cli", "score", "--reward", "math", "--input", str(rows),
                        "--output", str(Path(tmp) / "out.jsonl"), "-o", f"reward.workers={workers}"],
                       check=True, capture_output=True)
        return time.perf_counter() - t


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "math"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--startup-rows", type=int, default=300)
    a = p.parse_args()
    items = corpus(Path(a.data), a.n)
    texts, golds, labels = zip(*items)

    from pte_rl.rewards import MathConfig, MathReward

    reward = MathReward(MathConfig(workers=a.workers))
    t = time.perf_counter()
    reward.score(["\\boxed{1}"] * a.workers, ["1"] * a.workers)  # start the worker pool outside the timing
    pool_ready_s = time.perf_counter() - t
    t = time.perf_counter()
    ours = [r.value for r in reward.score(list(texts), list(golds))]
    ours_s = time.perf_counter() - t
    worker_mb = [_peak_rss_mb(p.proc.pid) for p in reward._pool._procs]
    reward.close()
    startup = _pte_score_wall(items[: a.startup_rows], a.workers)
    result = {"machine": machine(), "n": a.n,
              "startup": {"pte_score_rows": a.startup_rows, "pte_score_wall_s": round(startup, 2),
                          "pool_ready_s": round(pool_ready_s, 2), "worker_peak_rss_mb": worker_mb}, "pte_math": {"completions_per_s": a.n / ours_s, "workers": a.workers,
                                     "accuracy_vs_labels": sum((v == 1.0) == lab for v, lab in zip(ours, labels)) / a.n}}
    try:
        from math_verify import parse, verify
    except ImportError:
        result["math_verify"] = "not installed (pip install math-verify)"
    else:
        t = time.perf_counter()
        theirs = []
        for text, gold in zip(texts, golds):
            try:
                theirs.append(float(verify(parse("$" + gold + "$"), parse(text))))
            except Exception:
                theirs.append(0.0)
        mv_s = time.perf_counter() - t
        result["math_verify"] = {"completions_per_s": a.n / mv_s, "processes": 1,
                                 "accuracy_vs_labels": sum((v == 1.0) == lab for v, lab in zip(theirs, labels)) / a.n}
        result["agreement"] = sum(x == y for x, y in zip(ours, theirs)) / a.n
        result["speedup"] = result["pte_math"]["completions_per_s"] / result["math_verify"]["completions_per_s"]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
