"""Click plumbing: registry-backed names, plugin options, data files with precise errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .registry import KINDS, RegistryError, get_registry


class PluginName(click.ParamType):
    """A registry name of one kind, validated and shell-completed at run time."""

    def __init__(self, kind: str, weighted: bool = False):
        self.kind = kind
        self.weighted = weighted
        self.name = KINDS[kind][1]

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        name, weight = value, None
        if self.kind == "reward":
            from pte_rl.rewards.function import RewardFunctionError, is_function_spec, load_function, split_spec

            registered = value.partition(":")[0] in get_registry().names("reward")  # NAME:WEIGHT
            if is_function_spec(value) and not registered:  # file.py:fn[:w] or module:fn[:w], like TRL
                try:
                    spec, w = split_spec(value)
                    load_function(spec)  # a missing file or function is a usage error now
                except RewardFunctionError as err:
                    self.fail(str(err), param, ctx)
                return spec, w
        if self.weighted and ":" in value:
            name, _, raw = value.partition(":")
            try:
                weight = float(raw)
            except ValueError:
                self.fail(f"weight in '{value}' is not a number (use NAME or NAME:WEIGHT)", param, ctx)
        try:
            get_registry().get(self.kind, name)
        except RegistryError as err:
            self.fail(str(err), param, ctx)
        return (name, 1.0 if weight is None else weight) if self.weighted else name

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        return [CompletionItem(n) for n in get_registry().names(self.kind) if n.startswith(incomplete)]


def parse_plugin_opts(values: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``-o eviction.sink_tokens=8`` -> {"eviction": {"sink_tokens": 8}} (JSON values allowed)."""
    out: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
    for raw in values:
        key, eq, value = raw.partition("=")
        kind, dot, field = key.partition(".")
        if not eq or not dot or kind not in KINDS or not field:
            raise click.UsageError(
                f"-o {raw!r}: expected KIND.FIELD=VALUE with KIND one of {', '.join(KINDS)}"
            )
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out[kind][field] = parsed
    return out


def plugin_config(kind: str, name: str, flags: dict[str, Any], extra: dict[str, Any]):
    """Validate options for a plugin: CLI flags it understands (when given) plus ``-o`` extras."""
    entry = get_registry().get(kind, name)
    fields = set(entry.config.model_fields) if entry.config is not None else set()
    options = {k: v for k, v in flags.items() if v is not None and k in fields}
    options.update(extra)
    try:
        return entry, entry.validate(options)
    except RegistryError as err:
        raise click.UsageError(str(err)) from None


def read_data(path: str | Path, required: tuple[str, ...], skip_bad: bool = False, fields=None):
    """Data rows of any supported format (see :func:`pte_rl.data.read_rows`); problems become a
    usage error (exit 2)."""
    from pte_rl.data import DataError, read_rows

    try:
        rows, problems = read_rows(path, required, skip_bad, fields)
    except DataError as err:
        raise click.UsageError(str(err)) from None
    for p in problems:
        click.echo(f"skipped {p}", err=True)
    return rows, problems


def field_options(f):
    """--prompt-field / --answer-field: the data's own column names for prompt and answer."""
    for decorator in reversed([
        click.option("--prompt-field", default="prompt", show_default=True,
                     help="Column holding the prompt (a string, or chat messages [{role, content}, ...])."),
        click.option("--answer-field", default="answer", show_default=True, help="Column holding the reference answer."),
    ]):
        f = decorator(f)
    return f


def fields_of(kw: dict) -> dict[str, str]:
    """Our column names -> the data's, from the values of :func:`field_options`."""
    return {"prompt": kw.get("prompt_field") or "prompt", "answer": kw.get("answer_field") or "answer"}
