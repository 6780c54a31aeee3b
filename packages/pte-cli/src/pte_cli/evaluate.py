"""``pte eval``: accuracy per dataset and cache budget; resumable; results recomputable from samples.

Output folder: ``samples.jsonl`` (one line per completion, appended as they are produced) and
``results.json`` (every number, computed from samples.jsonl, plus all settings and the model and
adapter identity). Re-running with the same --output skips samples already written.

Numbers, per dataset x cache window, for the overall pool of problems and as a macro average over
datasets: ``pass@k`` (unbiased estimator, Chen et al. 2021) for each ``--pass-k``, ``mean@n`` (the
accuracy of all n samples; ``pass@1`` is the same number averaged per problem), ``maj@n`` (majority
vote over the extracted, normalised answers of the n samples) and, where rows carry a ``level``,
``subject`` or ``type``, the accuracy per value of that field.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
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

PRESETS = {"r1": {"temperature": 0.6, "top_p": 0.95, "samples": 16}}  # DeepSeek-R1 report, section 3
BASE_SETTINGS = {"samples": 1, "temperature": 0.0, "top_p": 1.0}  # without a preset
BREAKDOWN_FIELDS = ("level", "subject", "type")  # row fields that get an accuracy table of their own


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
@click.option("--preset", type=click.Choice(["none", *PRESETS]), default="none", show_default=True,
              help="Sampling protocol: r1 = the DeepSeek-R1 report's (temperature 0.6, top-p 0.95, 16 samples, "
                   "no system prompt unless --system is given); explicit flags win.")
@click.option("--samples", type=click.IntRange(1), default=None, help="Samples per problem (n) [default: 1; r1: 16].")
@click.option("--pass-k", "pass_k", default=None, metavar="K[,K...]",
              help="pass@k for each k, e.g. 1,4,8 (each at most --samples) [default: 1 and --samples].")
@click.option("--max-new-tokens", type=click.IntRange(1), default=512, show_default=True)
@click.option("--temperature", type=click.FloatRange(0), default=None,
              help="0 means greedy [default: 0; r1: 0.6].")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=None, help="[default: 1; r1: 0.95]")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="First N problems of each dataset.")
@reward_option
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@system_option
@click.option("--output", default=None, help="Folder for results.json and samples.jsonl (resumable).")
def eval_command(**kw):
    """Accuracy under cache budgets: pass@k, maj@n, length, truncation, evictions per dataset."""
    kw = resolve_settings(kw)
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


def resolve_settings(kw: dict) -> dict:
    """Fill the sampling options left unset (None) from ``--preset`` or the base defaults, and
    parse ``--pass-k``. An explicit flag always wins; under ``r1`` an unset ``--system`` means no
    system prompt (not an adapter's training prompt), see ``no_system``."""
    preset = PRESETS.get(kw.get("preset") or "none", {})
    out = dict(kw)
    for key, base in BASE_SETTINGS.items():
        if out.get(key) is None:
            out[key] = preset.get(key, base)
    out["pass_k"] = parse_pass_k(kw.get("pass_k"), out["samples"])
    return out


def no_system(kw: dict) -> bool:
    """Whether the prompt goes without a system message whatever the adapter was trained with."""
    return kw.get("preset") == "r1" and kw.get("system") is None


def default_pass_k(n: int) -> list[int]:
    return [1, n] if n > 1 else [1]


def parse_pass_k(value, n: int) -> list[int]:
    """``"1,4,8"`` -> ``[1, 4, 8]`` (sorted, 1 always in); unset: 1 and n. A k above n is a usage error."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default_pass_k(n)
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        ks = {int(str(x).strip()) for x in items if str(x).strip()}
    except ValueError:
        ks = {0}
    if not ks or min(ks) < 1:
        raise click.UsageError(f"--pass-k {value!r}: expected positive integers separated by commas, e.g. 1,4,8")
    if max(ks) > n:
        raise click.UsageError(f"--pass-k {max(ks)} is more than --samples {n}: pass@k needs at least k samples "
                               "per problem (raise --samples or lower k)")
    return sorted(ks | {1})


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): 1 - C(n-c, k) / C(n, k), for n samples of which c are correct."""
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n; n is {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def extracted_answer(completion: str) -> str | None:
    """The math reward's final answer of a completion, normalised (the string maj@n votes with);
    None where it finds none (or one too long to be an answer, as the reward scores it)."""
    from pte_rl.rewards import extract_answer, normalize
    from pte_rl.rewards.extract import MAX_ANSWER

    pred, _ = extract_answer(str(completion))
    if pred is None or len(pred) > MAX_ANSWER:
        return None
    try:
        out = normalize(pred)
    except Exception:  # a rule that trips on odd input: vote with the raw answer rather than fail the eval
        out = pred.strip()
    return out or None


def _extracted(sample: dict) -> str | None:
    # samples written before "extracted" was recorded: compute it from the completion
    return sample["extracted"] if "extracted" in sample else extracted_answer(sample["completion"])


def majority_vote(votes: list[tuple[str | None, bool]]) -> bool:
    """maj@n of one problem from its samples' ``(answer, correct)`` in sample order: the most
    frequent answer wins (a tie: the one that came first); samples without an answer do not vote
    and no answer at all is wrong. The vote is scored as the first sample with that answer was
    (samples with one normalised answer share one verdict under the math reward)."""
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for i, (answer, _) in enumerate(votes):
        if answer is None:
            continue
        counts[answer] = counts.get(answer, 0) + 1
        first.setdefault(answer, i)
    if not counts:
        return False
    best = max(counts, key=lambda a: (counts[a], -first[a]))
    return bool(votes[first[best]][1])


def _correct(sample: dict) -> bool:
    # samples written before "correct" was recorded: their total reward was the rule then
    return sample["correct"] if "correct" in sample else sample["reward"] >= 1.0


def _natural(value: str):
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", value)]


def breakdown(problems: dict[object, list[dict]]) -> dict:
    """Accuracy (mean over a problem's samples, then over problems) and problem count per value of
    each of BREAKDOWN_FIELDS that the problems carry; problems without the field are left out."""
    out = {}
    for field in BREAKDOWN_FIELDS:
        buckets: dict[str, list[float]] = {}
        for rows in problems.values():
            value = rows[0].get(field)
            if value is None or value == "":
                continue
            buckets.setdefault(str(value), []).append(sum(_correct(s) for s in rows) / len(rows))
        if buckets:
            out[field] = {v: {"accuracy": sum(buckets[v]) / len(buckets[v]), "n": len(buckets[v])}
                          for v in sorted(buckets, key=_natural)}
    return out


def summarize(samples: list[dict], n: int, pass_k=None) -> dict:
    """Numbers per dataset and budget, overall per budget (problems pooled), their macro average
    over datasets per budget, and the per-level/subject/type breakdown per dataset and budget.
    ``n`` is the samples per problem (it names ``mean@n`` and ``maj@n``); ``pass_k``: the k of
    pass@k [default: 1 and n]."""
    ks = sorted(set(pass_k or default_pass_k(n)) | {1})
    groups: dict = {}
    for s in samples:
        groups.setdefault((s["dataset"], s["budget"]), {}).setdefault(s["id"], []).append(s)

    def stats(problems: dict) -> dict:
        problems = {i: sorted(rows, key=lambda s: s["sample"]) for i, rows in problems.items()}
        flat = [s for rows in problems.values() for s in rows]
        per_problem = [(len(rows), sum(_correct(s) for s in rows)) for rows in problems.values()]
        fewest = min(m for m, _ in per_problem)
        if ks[-1] > fewest:
            raise ValueError(f"pass@{ks[-1]} needs {ks[-1]} samples per problem; a problem has {fewest}")
        out = {f"pass@{k}": sum(pass_at_k(m, c, k) for m, c in per_problem) / len(per_problem) for k in ks}
        out[f"mean@{n}"] = sum(_correct(s) for s in flat) / len(flat)
        out[f"maj@{n}"] = sum(majority_vote([(_extracted(s), _correct(s)) for s in rows])
                              for rows in problems.values()) / len(problems)
        return out | {
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
    parts: dict = {}
    for (dataset, budget), problems in sorted(groups.items()):
        results.setdefault(dataset, {})[budget] = stats(problems)
        pooled.setdefault(budget, {}).update({(dataset, i): rows for i, rows in problems.items()})
        table = breakdown(problems)
        if table:
            parts.setdefault(dataset, {})[budget] = table
    overall = {budget: stats(problems) for budget, problems in pooled.items()}
    return {"results": results, "overall": overall, "macro": macro_average(results), "breakdown": parts}


def macro_average(results: dict) -> dict:
    """Per budget, the mean over datasets of each per-dataset number (every dataset weighs the
    same, whatever its size; "overall" pools problems instead), and how many datasets went in."""
    out: dict = {}
    budgets = {b for per in results.values() for b in per}
    for budget in sorted(budgets, key=lambda b: (b == "full", int(b) if b.isdigit() else 0, b)):
        rows = [per[budget] for per in results.values() if budget in per]
        keys = [k for k in rows[0] if k not in ("problems", "samples") and all(k in r for r in rows)]
        out[budget] = {k: sum(r[k] for r in rows) / len(rows) for k in keys} | {"datasets": len(rows)}
    return out


def _complete(sample: dict, rows_by_id: dict) -> None:
    """A sample line written before a field was recorded gets it (extracted answer; the row's level,
    subject or type), so that samples.jsonl alone recomputes every number."""
    if "extracted" not in sample and "completion" in sample:
        sample["extracted"] = extracted_answer(sample["completion"])
    row = rows_by_id.get((sample.get("dataset"), sample.get("id")))
    if row is not None:
        for f in BREAKDOWN_FIELDS:
            if f in row and f not in sample:
                sample[f] = row[f]


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
    rows_by_id = {(d, r["id"]): r for d, rows in datasets.items() for r in rows}
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
                    _complete(s, rows_by_id)
                    samples.append(s)
                    done_keys.add((s["dataset"], s["id"], s["budget"], s["sample"]))
            write_text_atomic(path, jsonl_text(samples))
    from pte_rl.rewards.base import task_correct
    from pte_rl.rewards.function import RewardFunctionError
    from pte_rl.rollout import rollout_columns

    pte, tokenizer = load_model(choices["backend"], encoder, adapter)
    if no_system(kw):  # --preset r1: no system prompt, also for an adapter trained with one
        system = None
        if adapter:
            from pte_lora import read_manifest

            trained = read_manifest(adapter).system
            adapter_system(adapter, trained, tokenizer)  # for its chat-template check; the prompt stays none
            if trained is not None:
                click.echo(f"pte: --preset r1: no system prompt (the adapter was trained with {trained!r}; "
                           "--system to use it)", err=True)
    else:
        system = adapter_system(adapter, kw["system"], tokenizer)
    stop = eos_ids(pte.model, tokenizer)
    sampling = SamplingConfig(max_new_tokens=kw["max_new_tokens"], temperature=kw["temperature"], top_p=kw["top_p"])
    plan = [(b, d, r, k) for b in budgets for d, rows in datasets.items() for r in rows for k in range(kw["samples"])]
    planned = {(d, r["id"], b, k) for b, d, r, k in plan}  # how a sample line is keyed
    todo = [(b, d, r, k) for b, d, r, k in plan if (d, r["id"], b, k) not in done_keys]
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
                columns.update(rollout_columns([r["prompt"] for r in rows], comps))
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
                         "max_cache_tokens": c.max_cache_tokens, "prompt_tokens": len(c.prompt_ids),
                         "extracted": extracted_answer(text)}
                    s |= {f: r[f] for f in BREAKDOWN_FIELDS if f in r}
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
    # the numbers describe this invocation's settings: lines of other datasets, windows, rows or
    # sample indices (an earlier run in the same folder) stay in samples.jsonl but are not counted
    samples = [s for s in samples if (s["dataset"], s["id"], s["budget"], s["sample"]) in planned]
    summary = summarize(samples, kw["samples"], kw["pass_k"])
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
    click.echo(format_table(summary, budgets, kw["samples"], kw["pass_k"]))
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


def _grid(title: str, head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([title, line(head)] + [line(r) for r in rows])


def format_table(summary: dict, budgets: list[str], n: int, pass_k=None) -> str:
    """One table per number (pass@k for each k, then maj@n where n > 1): datasets, the pooled
    "overall" and (with several datasets) the "macro" average as rows, cache windows as columns;
    then each dataset's per-level/subject/type accuracy."""
    ks = sorted(set(pass_k or default_pass_k(n)) | {1})
    metrics = [f"pass@{k}" for k in ks] + ([f"maj@{n}"] if n > 1 else [])
    pct = lambda res, b, m: f"{res[b][m] * 100:.1f}" if b in res and m in res[b] else "-"  # noqa: E731
    blocks = []
    for i, m in enumerate(metrics):
        rows = [[d] + [pct(res, b, m) for b in budgets] for d, res in summary["results"].items()]
        rows.append(["overall"] + [pct(summary["overall"], b, m) for b in budgets])
        if len(summary["results"]) > 1 and "macro" in summary:
            rows.append(["macro"] + [pct(summary["macro"], b, m) for b in budgets])
        note = f" (samples per problem: {n})" if i == 0 else ""
        blocks.append(_grid(f"{m} (%) by cache window{note}", ["dataset", *budgets], rows))
    for d, per_budget in summary.get("breakdown", {}).items():
        fields = [f for f in BREAKDOWN_FIELDS if any(f in t for t in per_budget.values())]
        for field in fields:
            values = list(dict.fromkeys(v for t in per_budget.values() for v in t.get(field, {})))
            rows = []
            for v in values:
                cells = [per_budget.get(b, {}).get(field, {}).get(v) for b in budgets]
                count = next((c["n"] for c in cells if c), 0)
                rows.append([v, str(count)] + [f"{c['accuracy'] * 100:.1f}" if c else "-" for c in cells])
            blocks.append(_grid(f"{d} by {field}: mean@{n} (%) by cache window", [field, "n", *budgets], rows))
    return "\n\n".join(blocks)
