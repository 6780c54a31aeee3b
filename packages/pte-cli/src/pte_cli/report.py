"""``pte report``: several eval results side by side (Markdown table + accuracy-vs-window PNG)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .png import line_plot


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


def markdown(runs: dict[str, dict]) -> str:
    budgets = sorted({b for r in runs.values() for b in r["overall"]}, key=_budget_key)
    datasets = sorted({d for r in runs.values() for d in r["results"]})
    out = []
    for b in budgets:
        out.append(f"### pass@1 (%), cache window {b}\n")
        out.append("| method | " + " | ".join(datasets) + " | overall |")
        out.append("|---" * (len(datasets) + 2) + "|")
        for label, r in runs.items():
            cells = [f"{r['results'][d][b]['pass@1'] * 100:.1f}" if b in r["results"].get(d, {}) else "-"
                     for d in datasets]
            overall = f"{r['overall'][b]['pass@1'] * 100:.1f}" if b in r["overall"] else "-"
            out.append(f"| {label} | " + " | ".join(cells) + f" | {overall} |")
        out.append("")
    return "\n".join(out)


def plot(runs: dict[str, dict]) -> bytes:
    budgets = sorted({b for r in runs.values() for b in r["overall"]}, key=_budget_key)
    position = {b: float(i) for i, b in enumerate(budgets)}
    series = {label: [(position[b], r["overall"][b]["pass@1"] * 100) for b in budgets if b in r["overall"]]
              for label, r in runs.items()}
    return line_plot(series, {position[b]: b for b in budgets}, "ACCURACY VS CACHE WINDOW")


def run_report(results, labels, output, plot_path):
    if labels and len(labels) != len(results):
        raise click.UsageError(f"{len(labels)} --label values for {len(results)} results")
    runs = {}
    for i, path in enumerate(results):
        label = labels[i] if labels else Path(path).name or f"run{i}"
        runs[label] = load_result(path)
    text = markdown(runs)
    if output:
        Path(output).write_text(text)
    click.echo(text)
    if plot_path:
        Path(plot_path).write_bytes(plot(runs))
        click.echo(f"plot: {plot_path}", err=True)
