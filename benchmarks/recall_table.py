"""The method table of ``recall_rl.py`` runs: per-seed accuracy, paired differences, seeds agreeing.

    python benchmarks/recall_table.py runs/warm/a runs/warm/b

Reads every ``<method>-s<seed>`` folder that ``benchmarks/recall_rl.py`` left under the given
folders, scores each final adapter with ``pte eval`` on the run's held-out file under the run's
own cache and token limit (from its ``config.json``), once, into ``<run>/heldout-eval-w<W>-t<N>``,
and the untrained model the same way (Baseline). Every run must share the held-out rows and the
cache, or the script stops. Prints one JSON summary and a markdown table: per method the
accuracy after the warm start (the trainer's first eval, for runs started with
``--init-adapter``), after GRPO (mean over seeds, per seed) and with the full cache, then every
method's paired difference to PTE over the same held-out numbers, on the seeds both have (each
method's per-problem correctness averaged over those seeds; a normal 95% interval over problems,
given these adapters: it says nothing of the spread between seeds), and how many seeds agree in
sign. A run trained with the full cache (``recall_rl.py --methods LoRA``) is scored under the
bounded cache of the others like every run; its "full cache after" is its own trainer's eval, and
its "after warm start" is left empty (the trainer's first eval of it was a full-cache one).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine  # noqa: E402
from method_table import paired  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORDER = ("Baseline", "LoRA", "LoRA_c", "Global-Only", "#Global-0", "PTE")


def eval_setting(run: str) -> dict:
    """What ``pte eval`` needs to score like the run trained: held-out file, cache, token limit."""
    cfg = json.load(open(os.path.join(run, "config.json"), encoding="utf-8"))
    ev = cfg["eviction"]
    return {"heldout": cfg["data"]["eval"], "eviction": ev["name"], "options": ev["options"],
            "max_new_tokens": cfg["train"]["max_new_tokens"], "rewards": cfg["args"]["rewards"],
            "warm_started": bool(cfg["train"].get("init_adapter")), "trained_full": ev["name"] == "full"}


def evaluate(adapter: str | None, setting: dict, folder: str) -> dict[str, float]:
    """Problem id -> reward (1.0/0.0 for one digit) under the run's cache (``pte eval``; reused
    when that folder already holds the result)."""
    opts = dict(setting["options"])
    window = opts.pop("cache_window")
    out = os.path.join(folder, f"heldout-eval-w{window}-t{setting['max_new_tokens']}")
    if not os.path.exists(os.path.join(out, "results.json")):
        flags = ["--sink-tokens", str(opts.pop("sink_tokens"))] if "sink_tokens" in opts else []
        flags += ["--evict-ratio", str(opts.pop("evict_ratio"))] if "evict_ratio" in opts else []
        opts.pop("dynamic_window", None)
        for k, v in opts.items():
            flags += ["-o", f"eviction.{k}={json.dumps(v)}"]
        for r in setting["rewards"]:
            flags += ["--reward", r]
        subprocess.run([sys.executable, "-m", "pte_cli", "eval", "--dataset", setting["heldout"], "--output", out,
                        "--eviction", setting["eviction"], "--cache-window", str(window), *flags,
                        "--max-new-tokens", str(setting["max_new_tokens"]), "--batch-size", "64",
                        *(["--adapter", adapter] if adapter else ["--encoder", "none"])],
                       check=True, cwd=ROOT, stdout=sys.stderr, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    rows = [json.loads(line) for line in open(os.path.join(out, "samples.jsonl"), encoding="utf-8") if line.strip()]
    return {r["id"]: float(r["reward"]) for r in rows if str(r["budget"]) == str(window)}


def scoring_setting(settings: dict[tuple[str, int], dict]) -> dict:
    """The setting every run is scored under: that of the runs trained with a bounded cache, which
    must share held-out rows, cache and token limit; a run trained with the full cache (LoRA) must
    share the rows and the token limit. Stops naming the runs that differ."""
    bounded = [st for st in settings.values() if not st["trained_full"]]
    if not bounded:
        sys.exit("every run trained with the full cache: no bounded cache to score them under")
    first = bounded[0]

    def same(st: dict) -> bool:
        keys = ("max_new_tokens",) if st["trained_full"] else ("eviction", "options", "max_new_tokens")
        rows = open(st["heldout"], "rb").read() == open(first["heldout"], "rb").read()
        return rows and all(st[k] == first[k] for k in keys)

    odd = [f"{m}-s{s}" for (m, s), st in settings.items() if not same(st)]
    if odd:
        sys.exit(f"these runs used other held-out rows, cache or token limit than the rest: {odd}")
    return first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+")
    args = ap.parse_args()

    runs = {}  # (method, seed) -> folder
    for folder in args.folders:
        for name in sorted(os.listdir(folder)):
            m = re.fullmatch(r"(.+)-s(\d+)", name)
            if m and os.path.exists(os.path.join(folder, name, "metrics.jsonl")):
                runs[(m.group(1), int(m.group(2)))] = os.path.join(folder, name)
    if not runs:
        sys.exit(f"no <method>-s<seed> runs under {args.folders}")
    settings = {key: eval_setting(run) for key, run in runs.items()}
    first = scoring_setting(settings)
    scores, summary = {}, {}
    for (method, seed), run in sorted(runs.items()):
        lines = [json.loads(x) for x in open(os.path.join(run, "metrics.jsonl"), encoding="utf-8")]
        evals = [x for x in lines if "eval/reward" in x]
        step = max(x["step"] for x in lines)
        adapter = os.path.join(run, "checkpoints", f"step-{step:06d}", "adapter")
        scores[(method, seed)] = evaluate(adapter, first, run)
        row = summary.setdefault(method, {"warm": {}, "after": {}, "full_after": {}, "events_per_completion": {},
                                          "tokens_per_event": {}})
        trained_full = settings[(method, seed)]["trained_full"]  # its own evals are full-cache ones
        if settings[(method, seed)]["warm_started"] and not trained_full:
            row["warm"][seed] = evals[0]["eval/reward"]
        row["after"][seed] = sum(scores[(method, seed)].values()) / len(scores[(method, seed)])
        row["full_after"][seed] = evals[-1]["eval/reward"] if trained_full else evals[-1].get("eval_full/reward")
        if not trained_full:
            row["events_per_completion"][seed] = evals[-1].get("eval/evictions_per_completion")
            row["tokens_per_event"][seed] = evals[-1].get("eval/evicted_tokens_per_event")
    base = evaluate(None, first, args.folders[0].rstrip("/") + "/baseline")
    seeds = sorted({s for _, s in runs})
    for s in seeds:
        scores[("Baseline", s)] = base
    summary["Baseline"] = {"after": {s: sum(base.values()) / len(base) for s in seeds}}

    def mean_over(method, common):
        got = [scores[(method, s)] for s in common]
        return {i: sum(g[i] for g in got) / len(got) for i in got[0]}

    methods = [m for m in ORDER if m in summary] + sorted(set(summary) - set(ORDER))
    pairs = {}
    for other in methods:
        if other == "PTE" or "PTE" not in summary:
            continue
        common = [s for s in seeds if s in summary["PTE"]["after"] and s in summary[other]["after"]]
        if not common:
            continue
        by_seed = {s: round(summary["PTE"]["after"][s] - summary[other]["after"][s], 4) for s in common}
        agree = max(sum(v > 0 for v in by_seed.values()), sum(v < 0 for v in by_seed.values()))
        pairs[f"PTE - {other}"] = {**paired(mean_over("PTE", common), mean_over(other, common)), "by_seed": by_seed,
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
    table += ["", "| paired, common seeds (points) | mean | 95% CI over problems | per seed | seeds agreeing |",
              "|---|---:|---:|---:|---:|"]
    table += [f"| {k} | {v['mean'] * 100:+.1f} | [{v['ci95'][0] * 100:+.1f}, {v['ci95'][1] * 100:+.1f}] | "
              + " / ".join(f"{x * 100:+.1f}" for x in v["by_seed"].values()) + f" | {v['seeds_agreeing_in_sign']} |"
              for k, v in pairs.items()]
    print("\n".join(table), file=sys.stderr)
    print(json.dumps({"machine": machine(), "args": vars(args), "methods": summary, "paired": pairs}))


if __name__ == "__main__":
    main()
