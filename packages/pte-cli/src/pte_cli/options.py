"""Click plumbing shared by the subcommands: option groups declared once (model, cache, data
fields, config fields), registry-backed names, plugin options, data files with precise errors."""

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


def field_option(*flags: str, field: str | None = None, model=None, **overrides):
    """A click option whose default, range (or choices) and help are those of a config field
    (``TrainConfig`` unless ``model`` is given): each is declared once, on the field."""
    import types
    import typing

    if model is None:
        from pte_rl.config import TrainConfig as model
    name = field or flags[0].split("/")[0].lstrip("-").replace("-", "_")
    info = model.model_fields[name]
    kind = info.annotation
    if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None: an unset default
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    bounds = {attr: getattr(m, attr) for m in info.metadata for attr in ("gt", "ge", "lt", "le")
              if getattr(m, attr, None) is not None}
    options: dict[str, Any] = {"default": info.default, "show_default": info.default is not None,
                               "help": info.description}
    if typing.get_origin(kind) is typing.Literal:
        options["type"] = click.Choice(list(typing.get_args(kind)))
    elif kind is bool:
        options["show_default"] = "/" in flags[0]  # a lone on-flag's default is obviously off
        options["is_flag"] = "/" not in flags[0] or None
        options = {k: v for k, v in options.items() if v is not None}
    elif kind is int:
        low = bounds["gt"] + 1 if "gt" in bounds else bounds.get("ge")
        high = bounds["lt"] - 1 if "lt" in bounds else bounds.get("le")
        options["type"] = click.IntRange(low, high) if (low, high) != (None, None) else int
    elif kind is float:
        options["type"] = click.FloatRange(bounds.get("gt", bounds.get("ge")), bounds.get("lt", bounds.get("le")),
                                           min_open="gt" in bounds, max_open="lt" in bounds)
    options.update(overrides)
    return click.option(*flags, name, **options)


DEFAULT_REWARDS = (("math", 1.0),)  # `pte train`, `pte eval` and `pte score` without --reward


def reward_option(f):
    """--reward, repeatable, for every command that scores."""
    return click.option(
        "--reward", "rewards", type=PluginName("reward", weighted=True), multiple=True,
        help="Reward NAME[:WEIGHT] from the registry, or a Python function FILE.py:FN[:WEIGHT] / "
             "MODULE:FN[:WEIGHT] called as fn(completions, answers, **columns) -> list of float or None; "
             "repeatable [default: math].")(f)


def system_option(f):
    """--system, for every command that builds chat prompts."""
    from pte_rl.config import RunConfig

    return click.option("--system", default=None, help=RunConfig.model_fields["system"].description)(f)


def model_options(f):
    """--backend/--model/--device/--dtype and the plugin-option escape hatch."""
    for decorator in reversed([
        click.option("--backend", type=PluginName("backend"), default="hf", show_default=True,
                     help="Model backend (registry name)."),
        click.option("--model", default=None,
                     help="Built-in name (smollm2-135m-instruct), local folder, .gguf file or cached hub id."),
        click.option("--device", default=None, help="auto, cpu, cuda, cuda:N [default: auto]"),
        click.option("--dtype", default=None, help="auto, float32, bfloat16, float16 [default: auto]"),
        click.option("-o", "--plugin-opt", "plugin_opts", multiple=True, metavar="KIND.FIELD=VALUE",
                     help="Extra option for a plugin, e.g. -o eviction.sink_tokens=8."),
    ]):
        f = decorator(f)
    return f


def cache_options(f, with_window: bool = True):
    window = [click.option("--cache-window", type=int, default=None,
                           help="Cache budget per row in tokens, prompt included [policy default: 256].")]
    for decorator in reversed([
        click.option("--eviction", type=PluginName("eviction"), default="lru-prompt-keep", show_default=True,
                     help="Eviction policy (registry name)."),
        *(window if with_window else []),
        click.option("--evict-ratio", type=float, default=None,
                     help="Fraction of generated tokens evicted at once when full [default: 0.25]."),
        click.option("--sink-tokens", type=int, default=None, help="streaming-llm: sink tokens [default: 4]."),
        click.option("--encoder", type=PluginName("encoder"), default=None,
                     help="Thought encoder (registry name) [default: progressive, or the adapter's]."),
    ]):
        f = decorator(f)
    return f


def validate_common(backend, model, device, dtype, plugin_opts, eviction=None, cache_window=None,
                    evict_ratio=None, sink_tokens=None, encoder=None, dynamic_window=None):
    from .build import Choice

    extra = parse_plugin_opts(plugin_opts)
    choices = {}
    entry, cfg = plugin_config("backend", backend, {"model": model, "device": device, "dtype": dtype},
                               extra["backend"])
    choices["backend"] = Choice("backend", backend, cfg)
    if eviction is not None:
        flags = {"cache_window": cache_window, "evict_ratio": evict_ratio, "sink_tokens": sink_tokens,
                 "dynamic_window": dynamic_window}
        _, cfg = plugin_config("eviction", eviction, flags, extra["eviction"])
        choices["eviction"] = Choice("eviction", eviction, cfg)
    name = encoder or "progressive"
    _, cfg = plugin_config("encoder", name, {}, extra["encoder"])
    choices["encoder"] = Choice("encoder", name, cfg)
    choices["extra"] = extra
    return choices
