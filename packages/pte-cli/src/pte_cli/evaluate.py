"""``pte eval``: accuracy per dataset and cache budget; resumable; results recomputable from samples.

Output folder: ``samples.jsonl`` (one line per completion, appended as they are produced) and
``results.json`` (every number, computed from samples.jsonl, plus all settings and the model and
adapter identity). Re-running with the same --output skips samples already written.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from pathlib import Path

import click

from pte_rl.files import jsonl_line, jsonl_text, write_json_atomic, write_text_atomic

from .build import Choice, adapter_encoder, adapter_system, load_model, require_fits
from .options import (
    DEFAULT_REWARDS,
    cache_options,
    field_options,
    fields_of,
    model_options,
    read_data,
    reward_option,
    system_option,
    validate_common,
)
from .registry import get_registry


@click.command("eval")
@model_options
@lambda f: cache_options(f, with_window=False)
@click.option("--dataset", "datasets", multiple=True, required=True, type=click.Path(),
              help="Data file (.jsonl, .json, .csv, .parquet) or saved datasets folder with prompt and answer "
                   "(id, source optional); repeatable.")
@field_options
@click.option("--adapter", default=None, help="Adapter folder, or 'none' for the base model [default: none].")
@click.option("--cache-window", "cache_windows", multiple=True,
              help="Cache budget (tokens, prompt included) or 'full'; repeatable [default: full].")
@click.option("--samples", type=click.IntRange(1), default=1, show_default=True, help="Samples per problem (K).")
@click.option("--max-new-tokens", type=click.IntRange(1), default=512, show_default=True)
@click.option("--temperature", type=click.FloatRange(0), default=0.0, show_default=True, help="0 means greedy.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="First N problems of each dataset.")
@reward_option
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@system_option
@click.option("--output", default=None, help="Folder for results.json and samples.jsonl (resumable).")
def eval_command(**kw):
    """Accuracy under cache budgets: pass@1, pass@K, length, truncation, evictions per dataset."""
    parse_budgets(kw["cache_windows"])
    choices = validate_common(kw["backend"], kw["model"], kw["device"], kw["dtype"], kw["plugin_opts"],
                              kw["eviction"], None, kw["evict_ratio"], kw["sink_tokens"], kw["encoder"])
    run_eval(choices, kw)


def load_datasets(paths, limit, fields=None):
    datasets = {}
    for path in paths:
        rows, _ = read_data(path, ("prompt", "answer"), fields=fields)
        name = Path(path).stem
        if name in datasets:
            raise click.UsageError(f"two datasets are named '{name}'; rename one of the files")
        for r in rows:
            r.setdefault("id", f"{name}-{r['_line']}")
            r["id"] = str(r["id"])
        datasets[name] = rows[:limit] if limit else rows
    return datasets


def parse_budgets(values) -> list[str]:
    out = []
    for v in values or ("full",):
        v = str(v).strip().lower()
        if v != "full" and not (v.isdigit() and int(v) > 0):
            raise click.UsageError(f"--cache-window {v!r}: expected a positive integer or 'full'")
        if v not in out:
            out.append(v)
    return out


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): 1 - C(n-c, k) / C(n, k)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _correct(sample: dict) -> bool:
    # samples written before "correct" was recorded: their total reward was the rule then
    return sample["correct"] if "correct" in sample else sample["reward"] >= 1.0


def summarize(samples: list[dict], k: int) -> dict:
    """Numbers per dataset and budget, and overall per budget (problems pooled)."""
    groups: dict = {}
    for s in samples:
        groups.setdefault((s["dataset"], s["budget"]), {}).setdefault(s["id"], []).append(s)

    def stats(problems: dict) -> dict:
        flat = [s for rows in problems.values() for s in rows]
        per_problem = [(len(rows), sum(_correct(s) for s in rows)) for rows in problems.values()]
        kk = min(k, min(n for n, _ in per_problem))
        return {
            "pass@1": sum(c / n for n, c in per_problem) / len(per_problem),
            f"pass@{k}": sum(pass_at_k(n, c, kk) for n, c in per_problem) / len(per_problem),
            "mean_length": sum(s["num_tokens"] for s in flat) / len(flat),
            "truncation_rate": sum(s["truncated"] for s in flat) / len(flat),
            "evictions_per_completion": sum(s["num_evictions"] for s in flat) / len(flat),
            "state_updates_per_completion": sum(s.get("num_state_updates", 0) for s in flat) / len(flat),
            "evicted_tokens_per_event": (sum(s.get("evicted_tokens", 0) for s in flat)
                                         / max(1, sum(s["num_evictions"] for s in flat))),
            "problems": len(per_problem),
            "samples": len(flat),
        }

    results: dict = {}
    pooled: dict = {}
    for (dataset, budget), problems in sorted(groups.items()):
        results.setdefault(dataset, {})[budget] = stats(problems)
        pooled.setdefault(budget, {}).update({(dataset, i): rows for i, rows in problems.items()})
    overall = {budget: stats(problems) for budget, problems in pooled.items()}
    return {"results": results, "overall": overall}


def _adapter_identity(adapter):
    if not adapter:
        return None
    digest = hashlib.sha256()
    for name in ("adapter_model.safetensors", "thought_encoder.safetensors"):
        p = Path(adapter) / name
        if p.is_file():
            digest.update(p.read_bytes())
    return {"path": str(Path(adapter).resolve()), "sha256": digest.hexdigest()}


def run_eval(choices, kw):
    import torch
    from tqdm import tqdm

    from pte_rl import SamplingConfig, chat_prompt, eos_ids, sample

    from .scoring import build_reward, row_columns

    budgets = parse_budgets(kw["cache_windows"])
    datasets = load_datasets(kw["datasets"], kw["limit"], fields_of(kw))
    adapter = None if kw["adapter"] in (None, "none") else kw["adapter"]
    if adapter is None and kw["encoder"] is None:  # the bare base model: an untrained adapter is exact identity
        encoder = Choice("encoder", "none", get_registry().get("encoder", "none").validate({}))
    else:
        encoder = adapter_encoder(adapter, choices["encoder"], kw["encoder"] is not None)
    reward = build_reward(kw["rewards"] or DEFAULT_REWARDS, choices["extra"])
    out = Path(kw["output"]) if kw["output"] else None
    done_keys = set()
    samples: list[dict] = []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / "samples.jsonl"
        if path.exists():
            for line in path.read_text(encoding="utf-8").split("\n"):
                if line.strip():
                    try:
                        s = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by an interruption: regenerate that sample
                    samples.append(s)
                    done_keys.add((s["dataset"], s["id"], s["budget"], s["sample"]))
            write_text_atomic(path, jsonl_text(samples))
    from pte_rl.rewards.base import task_correct
    from pte_rl.rewards.function import RewardFunctionError

    pte, tokenizer = load_model(choices["backend"], encoder, adapter)
    system = adapter_system(adapter, kw["system"], tokenizer)
    stop = eos_ids(pte.model, tokenizer)
    sampling = SamplingConfig(max_new_tokens=kw["max_new_tokens"], temperature=kw["temperature"], top_p=kw["top_p"])
    todo = [(b, d, r, k) for b in budgets for d, rows in datasets.items() for r in rows for k in range(kw["samples"])
            if (d, r["id"], b, k) not in done_keys]
    bar = tqdm(total=len(todo), unit="sample", desc="eval", file=sys.stderr, disable=None)
    correct = total = 0
    t0 = time.time()
    sink = open(out / "samples.jsonl", "a", encoding="utf-8") if out is not None else None
    try:
        for start in range(0, len(todo), kw["batch_size"]):
            batch = todo[start : start + kw["batch_size"]]
            by_budget: dict = {}
            for item in batch:
                by_budget.setdefault(item[0], []).append(item)
            for budget, items in by_budget.items():
                policy = _policy(choices, budget)
                prompts = [chat_prompt(tokenizer, r["prompt"], system) for _, _, r, _ in items]
                for (_, d, r, _), ids in zip(items, prompts):
                    require_fits(policy, ids, f"{d} row {r['id']}")
                seed = kw["seed"] * 1_000_003 + start
                gen = torch.Generator(device=pte.device).manual_seed(seed)
                comps = sample(pte, prompts, policy, sampling, stop, pad_id=tokenizer.pad_token_id, generator=gen)
                texts = [tokenizer.decode(c.token_ids, skip_special_tokens=True) for c in comps]
                rows = [r for _, _, r, _ in items]
                columns = row_columns(rows, ("prompt", "answer"))  # other fields reach the rewards
                try:
                    scored = reward.score_parts(texts, [r["answer"] for r in rows], **columns)
                except RewardFunctionError as err:  # the user's function: its message, no traceback
                    raise click.ClickException(str(err)) from None
                totals, correct_rows = reward.total(scored), task_correct(scored)
                for j, ((_, d, r, k), c, text) in enumerate(zip(items, comps, texts)):
                    reasons = [res[j].reason for res in scored.values() if res[j].reason]
                    s = {"dataset": d, "id": r["id"], "budget": budget, "sample": k, "prompt": r["prompt"],
                         "answer": r["answer"], "completion": text, "reward": totals[j], "correct": correct_rows[j],
                         "reward_reason": "; ".join(reasons) or None, "num_tokens": len(c.token_ids),
                         "truncated": not c.finished, "num_evictions": c.num_evictions,
                         "num_state_updates": c.num_state_updates, "evicted_tokens": c.evicted_tokens,
                         "max_cache_tokens": c.max_cache_tokens, "prompt_tokens": len(c.prompt_ids)}
                    samples.append(s)
                    if sink is not None:
                        sink.write(jsonl_line(s))
                        sink.flush()
                    correct += s["correct"]
                    total += 1
            bar.update(len(batch))
            bar.set_postfix(acc=f"{correct / max(total, 1):.3f}")
    finally:
        bar.close()
        if sink is not None:
            sink.close()
        reward.close()
    summary = summarize(samples, kw["samples"])
    report = {
        "settings": {k: v for k, v in kw.items() if k not in ("plugin_opts",)} | {"budgets": budgets, "system": system},
        "model": choices["backend"].config.model,
        "adapter": _adapter_identity(adapter),
        "encoder": encoder.name,
        "eviction": choices["eviction"].name,
        "wall_time_s": time.time() - t0,
        **summary,
    }
    if out is not None:
        write_json_atomic(out / "results.json", report)
    click.echo(format_table(summary, budgets, kw["samples"]))
    _note_idle_states(pte.encoder, choices, samples, budgets)
    return report


def _note_idle_states(encoder, choices, samples: list[dict], budgets: list[str]) -> None:
    """Say once per bounded budget where the thought state hardly ever updated."""
    from pte_rl.rollout import idle_state_note

    for budget in budgets:
        rows = [s for s in samples if s["budget"] == budget]
        if budget == "full" or not rows:
            continue
        n = len(rows)
        events = sum(s["num_evictions"] for s in rows)
        rates = {"evictions_per_completion": events / n}
        longest_prompt = max(s.get("prompt_tokens", 0) for s in rows)
        longest_row = max(s.get("prompt_tokens", 0) + s["num_tokens"] for s in rows)
        note = idle_state_note(encoder, _policy(choices, budget), rates, longest_prompt, longest_row)
        if note:
            click.echo(f"warning: cache window {budget}: {note}", err=True)


def _policy(choices, budget):
    from pte_cache import Full

    if budget == "full":
        return Full()
    eviction: Choice = choices["eviction"]
    config = eviction.config
    if config is not None and "cache_window" in type(config).model_fields:
        update = {"cache_window": int(budget)}
        if "dynamic_window" in type(config).model_fields:
            update["dynamic_window"] = False
        config = config.model_copy(update=update)
    return Choice("eviction", eviction.name, config).build()


def format_table(summary: dict, budgets: list[str], k: int) -> str:
    head = ["dataset"] + [f"{b}" for b in budgets]
    rows = [[d] + [f"{res[b]['pass@1'] * 100:.1f}" if b in res else "-" for b in budgets]
            for d, res in summary["results"].items()]
    rows.append(["overall"] + [f"{summary['overall'][b]['pass@1'] * 100:.1f}" if b in summary["overall"] else "-"
                               for b in budgets])
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([f"pass@1 (%) by cache window (samples per problem: {k})", line(head)] + [line(r) for r in rows])
