"""The paper's Table 1 in miniature: LoRA, LoRA_c, Global-Only, #Global-0 and PTE trained on the
same data, seeds and steps, then evaluated with the untrained Baseline on a held-out split under
a tight cache and the full cache.

    python benchmarks/method_table.py [--steps 20] [--window 54] [--evict-ratio 0.25] [--seeds 0 1 2] [--style brief]
        [--methods PTE Global-Only LoRA_c] [--train-options "--replay-sub-batch-size 32"] [--out runs/method-table]

Methods (all `pte train` with the default recipe otherwise):
    LoRA         full cache during RL, encoder none (seeds: --lora-seeds)
    LoRA_c       lru-prompt-keep with --cache-window WINDOW during RL, encoder none
    Global-Only  same cache, encoder global-only: the learned S_g, never updated by evictions
    #Global-0    same cache, encoder progressive with init=zero: evictions only, no S_g
    PTE          same cache, encoder progressive
    PTE-exact    PTE with --replay-graph exact (only when named in --methods)
PTE - Global-Only is the part of PTE's gain that comes from encoding evicted tokens.
Every trained adapter and the Baseline are scored greedily by `pte eval` at --cache-window WINDOW
and full. Prints one JSON object (accuracy, n, 95% Wilson interval, peak training memory per
method) and a Markdown table, and draws the eval folders with `pte report` (report.md and
accuracy.png in --out). Everything is resumable: finished trainings and evals are reused.

Why this task: the default problems with brief answers (`pte data arithmetic --style brief`: two
operands up to 20, 48 new tokens) with a 54-token budget.
Prompts are 48-52 tokens and the prompt always stays, so only 2-6 generated tokens are in view:
the untrained model drops from 34.0% (full cache) to 14.1% (n=256), i.e. the tight cache hurts
it by 20 points, and training under that cache has something to recover. Results: README and docs/method.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine  # noqa: E402

from pte_cli.datasets import INSTRUCTIONS, arithmetic, heldout_arithmetic  # noqa: E402
from pte_rl.stats import wilson_interval  # noqa: E402

METHODS = {
    "LoRA": ["--eviction", "full", "--encoder", "none"],
    "LoRA_c": ["--eviction", "lru-prompt-keep", "--encoder", "none"],
    "Global-Only": ["--eviction", "lru-prompt-keep", "--encoder", "global-only"],
    "#Global-0": ["--eviction", "lru-prompt-keep", "--encoder", "progressive", "-o", "encoder.init=zero"],
    "PTE": ["--eviction", "lru-prompt-keep", "--encoder", "progressive"],
    # not in the default table: PTE trained with the exact replay gradient (every path through the
    # thought state and through several evictions kept), to tell a truncated gradient from a task
    # that does not need the state
    "PTE-exact": ["--eviction", "lru-prompt-keep", "--encoder", "progressive", "--replay-graph", "exact"],
}
DEFAULT_METHODS = [m for m in METHODS if m != "PTE-exact"]
# (a, b): report a - b paired over problems, and per seed
PAIRS = (("PTE", "Global-Only"), ("PTE", "LoRA_c"), ("PTE", "#Global-0"), ("PTE", "Baseline"),
         ("PTE-exact", "PTE"), ("PTE-exact", "Global-Only"),
         ("Global-Only", "LoRA_c"), ("LoRA_c", "Baseline"), ("LoRA", "Baseline"))
MODE_NAMES = ("trained", "no-updates", "swapped")  # benchmarks/state_probe.py
# the task (see the module docstring)
DEFAULT_STEPS, DEFAULT_WINDOW, DEFAULT_MAX_NEW, DEFAULT_DATA_OPTIONS, DEFAULT_STYLE = 20, 54, 48, [], "brief"


def runs_of(correct: dict, method: str, budget: str) -> dict:
    """seed label -> per-problem correctness of ``method`` at ``budget``."""
    return {label: v for (label, b), v in correct.items()
            if b == budget and (label == method or label.startswith(method + "-seed"))}


def mean_over_seeds(correct: dict, method: str, budget: str) -> dict:
    """Per-problem accuracy of ``method`` at ``budget``, averaged over its seeds."""
    runs = list(runs_of(correct, method, budget).values())
    return {i: sum(r[i] for r in runs) / len(runs) for i in runs[0]}


def paired(a: dict, b: dict, z: float = 1.96) -> dict:
    """Mean per-problem difference a - b and its normal 95% interval (n = shared problems)."""
    d = [a[i] - b[i] for i in a if i in b]
    n = len(d)
    if n == 0:
        raise SystemExit("no held-out problem in common")
    mean = sum(d) / n
    se = math.sqrt(sum((x - mean) ** 2 for x in d) / max(n - 1, 1) / n)
    return {"mean": round(mean, 4), "n": n, "ci95": [round(mean - z * se, 4), round(mean + z * se, 4)]}


def per_seed(correct: dict, a: str, b: str, budget: str) -> dict:
    """a - b accuracy seed by seed (a method with one run, e.g. Baseline, pairs with every seed)."""
    ra, rb = runs_of(correct, a, budget), runs_of(correct, b, budget)
    seeds = lambda runs: {k.rpartition("-seed")[2] if "-seed" in k else "*": v for k, v in runs.items()}  # noqa: E731
    sa, sb = seeds(ra), seeds(rb)
    keys = sorted(set(sa) & set(sb)) or sorted(set(sa) | set(sb))
    out = {}
    for k in keys:
        x, y = sa.get(k, sa.get("*")), sb.get(k, sb.get("*"))
        if x is None or y is None:
            continue
        out[k] = round((sum(x.values()) - sum(y.values())) / len(x), 4)
    same = max(sum(v > 0 for v in out.values()), sum(v < 0 for v in out.values()))
    return {"by_seed": out, "seeds_agreeing_in_sign": f"{same}/{len(out)}"}


def pte(*args: str) -> None:
    print("+ pte " + " ".join(args), file=sys.stderr, flush=True)
    # the command's own output goes to stderr: stdout carries only this script's JSON and table
    subprocess.run([sys.executable, "-m", "pte_cli", *args], check=True, stdout=sys.stderr,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--window", type=int, default=DEFAULT_WINDOW, help="Tight cache budget per row, prompt included.")
    ap.add_argument("--evict-ratio", type=float, default=None,
                    help="Fraction of the generated-token window evicted per event, in training and eval "
                         "[default: the policy's]; 1.0 leaves only the prompt and the thought state.")
    ap.add_argument("--train-options", default="", help="Extra `pte train` options for every run, one string.")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--lora-seeds", type=int, nargs="+", default=[0], help="Seeds of LoRA with the full cache.")
    ap.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, choices=list(METHODS))
    ap.add_argument("--heldout", type=int, default=256, help="Held-out problems.")
    ap.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW)
    ap.add_argument("--data-options", nargs="*", default=DEFAULT_DATA_OPTIONS,
                    help="`pte data arithmetic` options, e.g. --max-terms 3.")
    ap.add_argument("--style", choices=list(INSTRUCTIONS), default=DEFAULT_STYLE,
                    help="`pte data arithmetic --style`: brief answers, or the default job's worked ones "
                         "(with --window 78 --max-new-tokens 96: the default job's cache and length).")
    ap.add_argument("--no-probe", action="store_true", help="Skip benchmarks/state_probe.py on the PTE adapters.")
    ap.add_argument("--out", default="runs/method-table")
    args = ap.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = dict(zip(args.data_options[::2], args.data_options[1::2]))
    kw = {k.lstrip("-").replace("-", "_"): (v if k == "--operators" else int(v)) for k, v in options.items()}
    kw["style"] = args.style
    train = arithmetic(256, 0, **kw)
    held = heldout_arithmetic(args.heldout, {r["prompt"] for r in train}, **kw)
    for name, rows in (("train.jsonl", train), ("heldout.jsonl", held)):
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in rows))

    common = ["--max-new-tokens", str(args.max_new_tokens)]
    ratio = [] if args.evict_ratio is None else ["--evict-ratio", str(args.evict_ratio)]
    adapters = {"Baseline": "none"}
    peak, seconds = {}, {}
    for method in args.methods:
        for seed in (args.lora_seeds if method == "LoRA" else args.seeds):
            run = out / f"{method}-seed{seed}"
            final = run / "checkpoints" / f"step-{args.steps:06d}" / "adapter"
            if not final.is_dir():
                t = time.perf_counter()
                window = [] if method == "LoRA" else ["--cache-window", str(args.window), *ratio]
                pte("train", *METHODS[method], *window, *common, "--data", str(out / "train.jsonl"),
                    "--eval-data", str(out / "heldout.jsonl"), "--eval-batch-size", "64", "--no-eval-full-cache",
                    "--max-steps", str(args.steps), "--seed", str(seed), "--output-dir", str(run),
                    "--save-every", "0", "--no-tensorboard", "--resume", *args.train_options.split())
                seconds[f"{method}-seed{seed}"] = round(time.perf_counter() - t)
            adapters[f"{method}-seed{seed}"] = str(final)
            lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
            peak[f"{method}-seed{seed}"] = max(x.get("peak_memory_mb", 0) for x in lines)

    results, correct = {}, {}
    budgets = (str(args.window), "full")
    for label, adapter in adapters.items():
        folder = out / f"eval-{label}"
        pte("eval", "--dataset", str(out / "heldout.jsonl"), "--adapter", adapter, "--cache-window",
            str(args.window), "--cache-window", "full", *common, *ratio, "--batch-size", "64", "--output", str(folder))
        report = json.loads((folder / "results.json").read_text())
        for line in (folder / "samples.jsonl").read_text().splitlines():
            if line.strip():
                x = json.loads(line)
                correct.setdefault((label, x["budget"]), {})[x["id"]] = float(x["reward"] >= 1.0)
        results[label] = {}
        for budget, stats in report["overall"].items():
            n = stats["problems"]
            c = round(stats["pass@1"] * n)
            low, high = wilson_interval(c, n)
            results[label][budget] = {"accuracy": c / n, "n": n, "ci95": [round(low, 3), round(high, 3)],
                                      "evictions_per_completion": round(stats["evictions_per_completion"], 2),
                                      "evicted_tokens_per_event": round(stats.get("evicted_tokens_per_event", 0), 2)}

    methods = [m for m in ["Baseline", *METHODS] if any(k == m or k.startswith(m + "-seed") for k in results)]
    seeds = sorted({k.rpartition("-seed")[2] for k in results if "-seed" in k}, key=int)
    table = [f"| method | window {args.window}: mean | " + " | ".join(f"seed {s}" for s in seeds)
             + " | full cache: mean | peak train RSS |", "|---|---:|" + "---:|" * len(seeds) + "---:|---:|"]
    summary = {}
    for m in methods:
        labels = [k for k in results if k == m or k.startswith(m + "-seed")]
        row = {}
        for budget in budgets:
            acc = [results[k][budget]["accuracy"] for k in labels]
            n = sum(results[k][budget]["n"] for k in labels)
            c = sum(results[k][budget]["accuracy"] * results[k][budget]["n"] for k in labels)
            low, high = wilson_interval(c, n)
            row[budget] = {"accuracy": sum(acc) / len(acc), "n": n, "ci95": [round(low, 3), round(high, 3)],
                           "by_seed": {k.rpartition("-seed")[2] if "-seed" in k else "*": results[k][budget]["accuracy"]
                                       for k in labels}}
        mem = [peak[k] for k in labels if k in peak]
        row["peak_train_rss_mb"] = round(max(mem)) if mem else None
        summary[m] = row
        w = row[budgets[0]]
        by_seed = [f"{w['by_seed'][s] * 100:.1f}" if s in w["by_seed"] else "-" for s in seeds]
        table.append(f"| {m} | {w['accuracy'] * 100:.1f} [{w['ci95'][0] * 100:.0f}, {w['ci95'][1] * 100:.0f}] | "
                     + " | ".join(by_seed) + f" | {row['full']['accuracy'] * 100:.1f} | "
                     + (f"{row['peak_train_rss_mb']} MB |" if row["peak_train_rss_mb"] else "- |"))
    # Paired differences: the same held-out problems for every method, so per-problem differences
    # (each method averaged over its seeds) give a much tighter interval than two separate ones;
    # the per-seed differences say whether the seeds agree.
    pairs = {}
    for a, b in PAIRS:
        if a not in methods or b not in methods:
            continue
        for budget in budgets:
            pairs[f"{a} - {b} @ {budget}"] = {**paired(mean_over_seeds(correct, a, budget),
                                                       mean_over_seeds(correct, b, budget)),
                                              **per_seed(correct, a, b, budget)}
    table += ["", "| paired difference (points) | mean | 95% CI | seeds agreeing |", "|---|---:|---:|---:|"]
    table += [f"| {k} | {v['mean'] * 100:+.1f} | [{v['ci95'][0] * 100:+.1f}, {v['ci95'][1] * 100:+.1f}] | "
              f"{v['seeds_agreeing_in_sign']} |" for k, v in pairs.items()]
    eviction = {k: {f: v[budgets[0]][f] for f in ("evictions_per_completion", "evicted_tokens_per_event")}
                for k, v in results.items()}
    probes = {}
    if not args.no_probe:
        for label, adapter in adapters.items():
            # every adapter whose state is updated by evictions
            if "progressive" in METHODS.get(label.rpartition("-seed")[0], []):
                done = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "state_probe.py"),
                                       "--adapter", adapter, "--dataset", str(out / "heldout.jsonl"),
                                       "--limit", str(args.heldout), "--cache-window", str(args.window),
                                       "--max-new-tokens", str(args.max_new_tokens)],
                                      check=True, capture_output=True, text=True)
                probes[label] = json.loads(done.stdout.strip().splitlines()[-1])["modes"]
        if probes:
            table += ["", "| probe (window) | " + " | ".join(MODE_NAMES) + " |", "|---|" + "---:|" * len(MODE_NAMES)]
            for label, modes in probes.items():
                table.append(f"| {label} accuracy | " + " | ".join(f"{modes[m]['accuracy'] * 100:.1f}" for m in MODE_NAMES) + " |")
                table.append(f"| {label} log-lik | " + " | ".join(
                    f"{modes[m]['mean_loglik_of_trained_completions']:.3f}" for m in MODE_NAMES) + " |")
    report = ["report", *(str(out / f"eval-{k}") for k in adapters), *(x for k in adapters for x in ("--label", k)),
              "--output", str(out / "report.md"), "--plot", str(out / "accuracy.png")]
    pte(*report)
    print(json.dumps({"machine": machine(), "settings": vars(args), "methods": summary, "paired": pairs,
                      "per_run": results, "eviction_at_window": eviction, "probe": probes,
                      "train_seconds": seconds, "report": "pte " + " ".join(report)}))
    print("\n".join(table))


if __name__ == "__main__":
    main()
