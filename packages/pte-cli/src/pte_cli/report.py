"""``pte report``: eval results side by side (Markdown tables of pass@k, maj@n, overall and macro
averages; an accuracy-vs-window plot with 95% intervals) and training curves from metrics.jsonl.
Plots need matplotlib (``pip install 'pte-cli[plot]'``); the tables do not."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from pte_rl.files import atomic_path, write_text_atomic
from pte_rl.stats import wilson_interval

CURVES = (("reward", "mean reward"), ("eval/accuracy", "held-out accuracy"), ("kl", "KL to the base model"),
          ("completions/mean_length", "completion length (tokens)"))


def load_result(path: str) -> dict:
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise click.UsageError(f"{p}: not a readable results.json ({err})") from None


def _budget_key(b: str) -> float:
    return float("inf") if b == "full" else float(b)


_METRIC = re.compile(r"(pass|maj)@(\d+)")


def _metrics(runs: dict[str, dict]) -> list[str]:
    """pass@k for every k, then maj@n for every n, that any run reports (pass@1 always)."""
    keys = {"pass@1"}
    for r in runs.values():
        for stats in [*r["overall"].values(), *(s for per in r["results"].values() for s in per.values())]:
            keys |= {k for k in stats if _METRIC.fullmatch(k)}
    return sorted(keys, key=lambda k: (k.startswith("maj"), int(k.partition("@")[2])))


def macro(r: dict, budget: str) -> dict:
    """A run's macro average (mean over datasets) at one budget: as results.json has it, else
    (results written before it was recorded) computed from the per-dataset numbers."""
    if budget in r.get("macro", {}):
        return r["macro"][budget]
    rows = [per[budget] for per in r["results"].values() if budget in per]
    if not rows:
        return {}
    keys = [k for k in rows[0] if k not in ("problems", "samples") and all(k in x for x in rows)]
    return {k: sum(x[k] for x in rows) / len(rows) for k in keys}


def markdown(runs: dict[str, dict]) -> str:
    """Per cache window and per number (pass@k for each k, maj@n): one table, a row per run, a
    column per dataset, then the pooled "overall" and the "macro" average over datasets. A
    number a run did not record (older results.json, other k) is "-"."""
    budgets = sorted({b for r in runs.values() for b in r["overall"]}, key=_budget_key)
    datasets = sorted({d for r in runs.values() for d in r["results"]})
    cell = lambda stats, m: f"{stats[m] * 100:.1f}" if m in stats else "-"  # noqa: E731
    out = []
    for b in budgets:
        for m in _metrics(runs):
            out.append(f"### {m} (%), cache window {b}\n")
            out.append("| method | " + " | ".join(datasets) + " | overall | macro |")
            out.append("|---" * (len(datasets) + 3) + "|")
            for label, r in runs.items():
                cells = [cell(r["results"].get(d, {}).get(b, {}), m) for d in datasets]
                cells += [cell(r["overall"].get(b, {}), m), cell(macro(r, b), m)]
                out.append(f"| {label} | " + " | ".join(cells) + " |")
            out.append("")
    return "\n".join(out)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise click.UsageError("plots need matplotlib: pip install 'pte-cli[plot]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot(runs: dict[str, dict], path: str) -> None:
    """Overall pass@1 vs cache window, one line per run, with 95% Wilson intervals over problems."""
    plt = _pyplot()
    budgets = sorted({b for r in runs.values() for b in r["overall"]}, key=_budget_key)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for k, (label, r) in enumerate(runs.items()):
        xs, ys, lo, hi = [], [], [], []
        for i, b in enumerate(budgets):
            if b in r["overall"]:
                stats = r["overall"][b]
                low, high = wilson_interval(stats["pass@1"] * stats["problems"], stats["problems"])
                xs.append(i + (k - (len(runs) - 1) / 2) * 0.06)  # a small dodge so the bars do not overlap
                ys.append(100 * stats["pass@1"])
                lo.append(100 * (stats["pass@1"] - low))
                hi.append(100 * (high - stats["pass@1"]))
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=label)
    ax.set_xticks(range(len(budgets)), [str(b) for b in budgets])
    ax.set_xlabel("cache window (tokens, prompt included)")
    ax.set_ylabel("pass@1 (%)")
    ax.set_title("Accuracy vs cache window (95% intervals)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:  # never a half-written picture
        fig.savefig(tmp)
    plt.close(fig)


def plot_curves(runs: list[str], labels: list[str], path: str) -> None:
    """Training curves of ``pte train`` runs: reward, held-out accuracy, KL and length per step."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(9, 6), dpi=120)
    for run, label in zip(runs, labels):
        file = Path(run) / "metrics.jsonl" if Path(run).is_dir() else Path(run)
        try:
            rows = [json.loads(x) for x in file.read_text().splitlines() if x.strip()]
        except (OSError, json.JSONDecodeError) as err:
            raise click.UsageError(f"{file}: not a readable metrics.jsonl ({err})") from None
        for ax, (key, title) in zip(axes.flat, CURVES):
            points = [(r["step"], r[key]) for r in rows if key in r]
            if points:
                ax.plot(*zip(*points), marker="." if len(points) < 50 else None, label=label)
            ax.set_title(title)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
    axes.flat[0].legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:  # never a half-written picture
        fig.savefig(tmp)
    plt.close(fig)


def run_report(results, labels, output, plot_path, curves=()):
    if not results and not curves:
        raise click.UsageError("give eval result folders (RESULTS) and/or --curves RUN")
    if curves:
        if not plot_path:
            raise click.UsageError("--curves draws a picture: give --plot FILE.png")
        names = list(labels) if labels and not results else [Path(c).name or c for c in curves]
        plot_curves(list(curves), names, plot_path)
        click.echo(f"plot: {plot_path}", err=True)
        return
    if labels and len(labels) != len(results):
        raise click.UsageError(f"{len(labels)} --label values for {len(results)} results")
    runs = {}
    for i, path in enumerate(results):
        label = labels[i] if labels else Path(path).name or f"run{i}"
        runs[label] = load_result(path)
    text = markdown(runs)
    if output:
        write_text_atomic(output, text)
    click.echo(text)
    if plot_path:
        plot(runs, plot_path)
        click.echo(f"plot: {plot_path}", err=True)


@click.command()
@click.argument("results", nargs=-1)
@click.option("--label", "labels", multiple=True, help="Name of each run, in order (e.g. Baseline LoRA PTE).")
@click.option("--output", default=None, help="Write the Markdown table here too.")
@click.option("--plot", "plot_path", default=None,
              help="Write a PNG: accuracy vs cache window with 95% intervals (or the --curves). Needs matplotlib.")
@click.option("--curves", multiple=True, metavar="RUN",
              help="A `pte train` output folder (or metrics.jsonl): plot reward, held-out accuracy, KL and "
                   "length per step; repeatable.")
def report(results, labels, output, plot_path, curves):
    """Put `pte eval` results side by side (Markdown tables, accuracy-vs-window plot), or draw
    training curves of `pte train` runs (--curves)."""
    run_report(results, labels, output, plot_path, curves)
