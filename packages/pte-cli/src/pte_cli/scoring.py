"""``pte score``: rewards over a JSONL file."""

from __future__ import annotations

import json
import os
import sys
import tempfile

import click

from .options import plugin_config, read_data


def reward_configs(rewards, extra):
    """Validated ``(name, entry, config, weight)`` per reward, nothing built yet.
    ``-o reward.FIELD=V`` goes to every reward with that field; a field none has is an error."""
    import click

    from pte_rl.rewards.function import FunctionReward, is_function_spec

    from .registry import get_registry

    options = extra.get("reward", {})
    functions = {name for name, _ in rewards if is_function_spec(name)}
    entries = [_FunctionEntry(FunctionReward, name) if name in functions else get_registry().get("reward", name)
               for name, _ in rewards]
    fields = [set(e.config.model_fields) if e.config is not None else set() for e in entries]
    unused = [k for k in options if not any(k in f for f in fields)]
    if unused:
        names = ", ".join(n for n, _ in rewards)
        raise click.UsageError(f"-o reward.{unused[0]}: no selected reward ({names}) has option '{unused[0]}'")
    out = []
    for (name, weight), f, entry in zip(rewards, fields, entries):
        if name in functions:
            out.append((name, entry, None, weight))
            continue
        entry, config = plugin_config("reward", name, {}, {k: v for k, v in options.items() if k in f})
        out.append((name, entry, config, weight))
    return out


class _FunctionEntry:
    """Stands in for a registry entry: a reward given as FILE.py:FUNCTION or MODULE:FUNCTION."""

    config = None

    def __init__(self, cls, spec):
        self.factory = lambda: cls(spec)


def build_reward(rewards, extra):
    """Rewards combined with weights (see :func:`reward_configs` for options)."""
    from pte_rl.rewards import WeightedSum

    return WeightedSum([(name, entry.factory(config) if config is not None else entry.factory(), weight)
                        for name, entry, config, weight in reward_configs(rewards, extra)])


def run_score(rewards, input_path, output, skip_bad_rows, extra, fields=None):
    rows, _ = read_data(input_path, ("completion", "answer"), skip_bad=skip_bad_rows, fields=fields)
    from pte_rl.rewards.function import RewardFunctionError

    reward = build_reward(rewards, extra)
    names = sorted({k for r in rows for k in r} - {"completion", "answer", "_line"})
    columns = {k: [r.get(k) for r in rows] for k in names}  # other fields reach the rewards
    try:
        parts = reward.score_parts([r["completion"] for r in rows], [r["answer"] for r in rows], **columns)
    except RewardFunctionError as err:
        raise click.ClickException(str(err)) from None
    totals = reward.total(parts)
    lines = []
    for i, row in enumerate(rows):
        row.pop("_line", None)
        row["reward"] = totals[i]
        reasons = [f"{name}: {res[i].reason}" if len(parts) > 1 else res[i].reason
                   for name, res in parts.items() if res[i].reason]
        if reasons:
            row["reward_reason"] = "; ".join(reasons)
        if len(parts) > 1:
            row["rewards"] = {name: res[i].value for name, res in parts.items()}
        lines.append(json.dumps(row, ensure_ascii=False))
    for _, r, _ in reward.parts:
        getattr(r, "close", lambda: None)()
    text = "".join(line + "\n" for line in lines)
    if output is None:
        sys.stdout.write(text)
        return
    # atomic: a crash never leaves a half-written output
    folder = os.path.dirname(os.path.abspath(output))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".pte-score-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, output)
    mean = sum(totals) / len(totals) if totals else 0.0
    click.echo(f"scored {len(rows)} rows, mean reward {mean:.4f} -> {output}", err=True)
