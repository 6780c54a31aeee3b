"""The method table of ``recall_rl.py`` runs: per-seed accuracy, paired differences, seeds agreeing.

    python benchmarks/recall_table.py runs/warm/a runs/warm/b [--cache-window 40]

Reads every ``<method>-s<seed>`` folder that ``benchmarks/recall_rl.py`` left under the given
folders (and their ``-warm`` adapters, when the runs had a warm start), scores each final
adapter on the runs' held-out file with ``pte eval`` under the training cache (streamed prompt,
as the runs), once, into ``<run>/heldout-eval``, and the untrained model the same way (Baseline).
Prints one JSON summary and a markdown table: per method the accuracy after the warm start (the
trainer's first eval), after GRPO (mean over seeds, per seed) and with the full cache, then every
method's paired difference to PTE over the same held-out numbers (each method's per-problem
correctness averaged over its seeds; normal 95% interval) and how many seeds agree in sign.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORDER = ("Baseline", "LoRA_c", "Global-Only", "#Global-0", "PTE")


def evaluate(adapter: str | None, heldout: str, out: str, window: int, new_tokens: int) -> dict[str, float]:
    """Problem id -> 1.0/0.0 under the runs' cache (``pte eval``; reused when already written)."""
    path = os.path.join(out, "samples.jsonl")
    if not os.path.exists(os.path.join(out, "results.json")):
        subprocess.run([sys.executable, "-m", "pte_cli", "eval", "--dataset", heldout, "--output", out,
                        "--eviction", "streaming-llm", "--sink-tokens", "4", "--cache-window", str(window),
                        "-o", "eviction.stream_prompt=true", "--max-new-tokens", str(new_tokens),
                        "--reward", "examples/recall_reward.py:digits", "--batch-size", "64",
                        *(["--adapter", adapter] if adapter else ["--encoder", "none"])],
                       check=True, cwd=ROOT, stdout=sys.stderr, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    return {r["id"]: float(r["reward"]) for r in rows if str(r["budget"]) == str(window)}


def paired(a: dict, b: dict, z: float = 1.96) -> dict:
    d = [a[i] - b[i] for i in a if i in b]
    n = len(d)
    mean = sum(d) / n
    se = math.sqrt(sum((x - mean) ** 2 for x in d) / max(n - 1, 1) / n)
    return {"mean": round(mean, 4), "n": n, "ci95": [round(mean - z * se, 4), round(mean + z * se, 4)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--cache-window", type=int, default=40)
    ap.add_argument("--max-new-tokens", type=int, default=8)
    args = ap.parse_args()

    runs = {}  # (method, seed) -> folder
    for folder in args.folders:
        for name in sorted(os.listdir(folder)):
            m = re.fullmatch(r"(.+)-s(\d+)", name)
            if m and os.path.exists(os.path.join(folder, name, "metrics.jsonl")):
                runs[(m.group(1), int(m.group(2)))] = os.path.join(folder, name)
    heldout = os.path.join(args.folders[0], "heldout.jsonl")
    scores, summary = {}, {}
    for (method, seed), run in sorted(runs.items()):
        lines = [json.loads(x) for x in open(os.path.join(run, "metrics.jsonl"), encoding="utf-8")]
        evals = [x for x in lines if "eval/reward" in x]
        step = max(x["step"] for x in lines)
        adapter = os.path.join(run, "checkpoints", f"step-{step:06d}", "adapter")
        scores[(method, seed)] = evaluate(adapter, heldout, os.path.join(run, "heldout-eval"), args.cache_window,
                                          args.max_new_tokens)
        row = summary.setdefault(method, {"warm": {}, "after": {}, "full_after": {}, "events_per_completion": {},
                                          "tokens_per_event": {}})
        row["warm"][seed] = evals[0]["eval/reward"]
        row["after"][seed] = sum(scores[(method, seed)].values()) / len(scores[(method, seed)])
        row["full_after"][seed] = evals[-1].get("eval_full/reward")
        row["events_per_completion"][seed] = evals[-1].get("eval/evictions_per_completion")
        row["tokens_per_event"][seed] = evals[-1].get("eval/evicted_tokens_per_event")
    base = evaluate(None, heldout, os.path.join(args.folders[0], "baseline-eval"), args.cache_window,
                    args.max_new_tokens)
    seeds = sorted({s for _, s in runs})
    for s in seeds:
        scores[("Baseline", s)] = base
    summary["Baseline"] = {"after": {s: sum(base.values()) / len(base) for s in seeds}}

    def mean_over_seeds(method):
        got = [scores[(method, s)] for s in seeds if (method, s) in scores]
        return {i: sum(g[i] for g in got) / len(got) for i in got[0]}

    methods = [m for m in ORDER if m in summary] + sorted(set(summary) - set(ORDER))
    pairs = {}
    for other in methods:
        if other == "PTE" or "PTE" not in summary:
            continue
        by_seed = {s: round(summary["PTE"]["after"][s] - summary[other]["after"][s], 4)
                   for s in seeds if s in summary["PTE"]["after"] and s in summary[other]["after"]}
        agree = max(sum(v > 0 for v in by_seed.values()), sum(v < 0 for v in by_seed.values()))
        pairs[f"PTE - {other}"] = {**paired(mean_over_seeds("PTE"), mean_over_seeds(other)), "by_seed": by_seed,
                                   "seeds_agreeing_in_sign": f"{agree}/{len(by_seed)}"}
    pct = lambda v: "-" if v is None else f"{v * 100:.1f}"  # noqa: E731
    table = ["| method | after warm start | after GRPO, this cache: mean (seeds " + " / ".join(map(str, seeds))
             + ") | full cache after |", "|---|---:|---:|---:|"]
    for m in methods:
        row = summary[m]
        after = list(row["after"].values())
        warm = list(row.get("warm", {}).values())
        full = [v for v in row.get("full_after", {}).values() if v is not None]
        table.append(f"| {m} | {pct(sum(warm) / len(warm)) if warm else '-'} | {pct(sum(after) / len(after))} ("
                     + " / ".join(pct(row["after"].get(s)) for s in seeds) + ") | "
                     + (pct(sum(full) / len(full)) if full else "-") + " |")
    table += ["", "| paired (points) | mean | 95% CI | per seed | seeds agreeing |", "|---|---:|---:|---:|---:|"]
    table += [f"| {k} | {v['mean'] * 100:+.1f} | [{v['ci95'][0] * 100:+.1f}, {v['ci95'][1] * 100:+.1f}] | "
              + " / ".join(f"{x * 100:+.1f}" for x in v["by_seed"].values()) + f" | {v['seeds_agreeing_in_sign']} |"
              for k, v in pairs.items()]
    print("\n".join(table), file=sys.stderr)
    print(json.dumps({"machine": machine(), "args": vars(args), "methods": summary, "paired": pairs}))


if __name__ == "__main__":
    main()
