"""Math reward throughput: completions/s for pte's `math` reward and for Math-Verify.

    pip install math-verify        # only for the comparison; pte never needs it
    python benchmarks/reward_throughput.py [--n 4000] [--data ../shared/data/math]

The corpus: ~300-token completions (reasoning filler + a boxed answer, half correct and half
perturbed) built from the benchmark gold answers. Prints JSON with completions/s, agreement with
Math-Verify, and accuracy against the known labels.
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "math"))
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    items = corpus(Path(a.data), a.n)
    texts, golds, labels = zip(*items)

    from pte_rl.rewards import MathConfig, MathReward

    reward = MathReward(MathConfig(workers=a.workers))
    reward.score(["\\boxed{1}"], ["1"])  # start the worker pool outside the timing
    t = time.perf_counter()
    ours = [r.value for r in reward.score(list(texts), list(golds))]
    ours_s = time.perf_counter() - t
    reward.close()
    result = {"machine": machine(), "n": a.n, "pte_math": {"completions_per_s": a.n / ours_s, "workers": a.workers,
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
