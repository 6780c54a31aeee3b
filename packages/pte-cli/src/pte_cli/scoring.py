"""``pte score``: rewards over a data file; and the reward builders `pte train` and `pte eval` share."""

from __future__ import annotations

import sys

import click

from pte_rl.files import jsonl_line, write_text_atomic

from .options import DEFAULT_REWARDS, parse_plugin_opts, plugin_config, read_data, reward_option


def _entry(name: str):
    """The registry entry of a reward, or a stand-in for a FILE.py:FN / MODULE:FN function."""
    from pte_rl.rewards.function import FunctionReward, is_function_spec

    from .registry import get_registry

    return _FunctionEntry(FunctionReward, name) if is_function_spec(name) else get_registry().get("reward", name)


def reward_configs(rewards, extra):
    """Validated ``(name, entry, config, weight)`` per reward, nothing built yet.
    ``-o reward.FIELD=V`` goes to every reward with that field; a field none has is an error."""
    options = extra.get("reward", {})
    entries = [_entry(name) for name, _ in rewards]
    fields = [set(e.config.model_fields) if e.config is not None else set() for e in entries]
    unused = [k for k in options if not any(k in f for f in fields)]
    if unused:
        names = ", ".join(n for n, _ in rewards)
        raise click.UsageError(f"-o reward.{unused[0]}: no selected reward ({names}) has option '{unused[0]}'")
    out = []
    for (name, weight), f, entry in zip(rewards, fields, entries):
        if isinstance(entry, _FunctionEntry):
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

    def validate(self, options=None):
        return None  # a function takes no options

    def build(self, config=None):
        return self.factory()


def build_reward(rewards, extra):
    """Rewards combined with weights (see :func:`reward_configs` for options)."""
    from pte_rl.rewards import WeightedSum

    return WeightedSum([(name, entry.build(config), weight)
                        for name, entry, config, weight in reward_configs(rewards, extra)])


def rewards_of(choices):
    """The combined reward of a run config's ``rewards`` (name, validated options, weight)."""
    from pte_rl.rewards import WeightedSum

    parts = []
    for c in choices:
        entry = _entry(c.name)
        parts.append((c.name, entry.build(entry.validate(c.options)), c.weight))
    return WeightedSum(parts)


def row_columns(rows: list[dict], used: tuple[str, ...]) -> dict[str, list]:
    """The rows' other fields, one list per field, as keyword columns for the rewards."""
    names = sorted({k for r in rows for k in r} - {*used, "_line"})
    return {k: [r.get(k) for r in rows] for k in names}


def run_score(rewards, input_path, output, skip_bad_rows, extra, fields=None):
    rows, _ = read_data(input_path, ("completion", "answer"), skip_bad=skip_bad_rows, fields=fields)
    from pte_rl.rewards.function import RewardFunctionError

    reward = build_reward(rewards, extra)
    columns = row_columns(rows, ("completion", "answer"))  # other fields reach the rewards
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
        lines.append(jsonl_line(row))
    reward.close()
    text = "".join(lines)
    if output is None:
        sys.stdout.write(text)
        return
    write_text_atomic(output, text)  # a crash never leaves a half-written output
    mean = sum(totals) / len(totals) if totals else 0.0
    click.echo(f"scored {len(rows)} rows, mean reward {mean:.4f} -> {output}", err=True)


@click.command()
@reward_option
@click.option("--input", "input_path", type=click.Path(dir_okay=False), required=True,
              help="JSONL rows with 'completion' and 'answer' (other fields are kept).")
@click.option("--completion-field", default="completion", show_default=True, help="Column holding the completion.")
@click.option("--answer-field", default="answer", show_default=True, help="Column holding the reference answer.")
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="Write here instead of stdout.")
@click.option("--skip-bad-rows", is_flag=True, help="Report and skip malformed rows instead of stopping.")
@click.option("-o", "--plugin-opt", "plugin_opts", multiple=True, metavar="reward.FIELD=VALUE",
              help="Extra reward option, e.g. -o reward.timeout=2.")
def score(rewards, input_path, completion_field, answer_field, output, skip_bad_rows, plugin_opts):
    """Score completions with reward plugins; writes JSONL with 'reward' (and 'reward_reason')."""
    run_score(rewards or DEFAULT_REWARDS, input_path, output, skip_bad_rows, parse_plugin_opts(plugin_opts),
              {"completion": completion_field, "answer": answer_field})
