"""The paper's Table 1 in miniature: LoRA, LoRA_c and PTE trained on the same data, seeds and
steps, then evaluated with the untrained Baseline on a held-out split under a tight cache and the
full cache.

    python benchmarks/method_table.py [--steps 20] [--window 54] [--seeds 0] [--out runs/method-table]

Methods (all `pte train` with the default recipe otherwise):
    LoRA    full cache during RL, encoder none
    LoRA_c  lru-prompt-keep with --cache-window WINDOW during RL, encoder none
    PTE     lru-prompt-keep with --cache-window WINDOW during RL, encoder progressive
Every trained adapter and the Baseline are scored greedily by `pte eval` at --cache-window WINDOW
and full. Prints one JSON object (accuracy, n, 95% Wilson interval, peak training memory per
method) and a Markdown table; `pte report` draws the eval folders (the command is printed).
Everything is resumable: finished trainings and evals are reused.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

METHODS = {
    "LoRA": ["--eviction", "full", "--encoder", "none"],
    "LoRA_c": ["--eviction", "lru-prompt-keep", "--encoder", "none"],
    "PTE": ["--eviction", "lru-prompt-keep", "--encoder", "progressive"],
}


def wilson(c: float, n: float, z: float = 1.96) -> tuple[float, float]:
    p = c / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def pte(*args: str) -> None:
    print("+ pte " + " ".join(args), file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "pte_cli", *args], check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--window", type=int, default=54, help="Tight cache budget per row, prompt included "
                    "(prompts are ~48-52 tokens: 54 leaves a few generated tokens in view).")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--heldout", type=int, default=128, help="Held-out problems.")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--data-options", nargs="*", default=[], help="Extra `pte data arithmetic` options.")
    ap.add_argument("--out", default="runs/method-table")
    args = ap.parse_args()

    from pte_cli.datasets import arithmetic, heldout_arithmetic

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = dict(zip(args.data_options[::2], args.data_options[1::2]))
    kw = {k.lstrip("-").replace("-", "_"): (v if k == "--operators" else int(v)) for k, v in options.items()}
    train = arithmetic(256, 0, **kw)
    held = heldout_arithmetic(args.heldout, {r["prompt"] for r in train}, **kw)
    for name, rows in (("train.jsonl", train), ("heldout.jsonl", held)):
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in rows))

    common = ["--max-new-tokens", str(args.max_new_tokens)]
    adapters = {"Baseline": "none"}
    peak = {}
    for method, flags in METHODS.items():
        for seed in args.seeds:
            run = out / f"{method}-seed{seed}"
            final = run / "checkpoints" / f"step-{args.steps:06d}" / "adapter"
            if not final.is_dir():
                window = [] if method == "LoRA" else ["--cache-window", str(args.window)]
                pte("train", *flags, *window, *common, "--data", str(out / "train.jsonl"), "--max-steps",
                    str(args.steps), "--seed", str(seed), "--output-dir", str(run), "--save-every", "0",
                    "--no-tensorboard", "--resume")
            adapters[f"{method}-seed{seed}"] = str(final)
            lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
            peak[f"{method}-seed{seed}"] = max(x.get("peak_memory_mb", 0) for x in lines)

    results = {}
    for label, adapter in adapters.items():
        folder = out / f"eval-{label}"
        pte("eval", "--dataset", str(out / "heldout.jsonl"), "--adapter", adapter, "--cache-window",
            str(args.window), "--cache-window", "full", *common, "--batch-size", "64", "--output", str(folder))
        report = json.loads((folder / "results.json").read_text())
        results[label] = {}
        for budget, stats in report["overall"].items():
            n = stats["problems"]
            c = round(stats["pass@1"] * n)
            low, high = wilson(c, n)
            results[label][budget] = {"accuracy": c / n, "n": n, "ci95": [round(low, 3), round(high, 3)]}

    methods = ["Baseline"] + [m for m in METHODS]
    table = ["| method | cache window " + str(args.window) + " | full cache | peak train RSS |", "|---|---:|---:|---:|"]
    summary = {}
    for m in methods:
        labels = [k for k in results if k == m or k.startswith(m + "-seed")]
        row = {}
        for budget in (str(args.window), "full"):
            acc = [results[k][budget]["accuracy"] for k in labels]
            n = sum(results[k][budget]["n"] for k in labels)
            c = sum(results[k][budget]["accuracy"] * results[k][budget]["n"] for k in labels)
            low, high = wilson(c, n)
            row[budget] = {"accuracy": sum(acc) / len(acc), "n": n, "ci95": [round(low, 3), round(high, 3)]}
        mem = [peak[k] for k in labels if k in peak]
        row["peak_train_rss_mb"] = round(max(mem)) if mem else None
        summary[m] = row
        cells = [f"{row[b]['accuracy'] * 100:.1f} [{row[b]['ci95'][0] * 100:.0f}, {row[b]['ci95'][1] * 100:.0f}]"
                 for b in (str(args.window), "full")]
        table.append(f"| {m} | {cells[0]} | {cells[1]} | {row['peak_train_rss_mb'] or '-'} MB |"
                     if row["peak_train_rss_mb"] else f"| {m} | {cells[0]} | {cells[1]} | - |")
    report_cmd = "pte report " + " ".join(str(out / f"eval-{k}") for k in adapters) + " " + " ".join(
        f"--label {k}" for k in adapters) + f" --output {out / 'report.md'} --plot {out / 'accuracy.png'}"
    print(json.dumps({"settings": vars(args), "methods": summary, "per_run": results, "report": report_cmd}))
    print("\n".join(table))


if __name__ == "__main__":
    main()
