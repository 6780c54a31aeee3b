"""``pte train --config FILE``: a run's options from YAML or JSON, command-line flags on top.

The file holds the same options as the command line, by their flag names (``max_steps`` or
``max-steps``; ``reward`` as a list), e.g.::

    model: smollm2-135m-instruct
    eviction: lru-prompt-keep
    reward: [math, "format:0.1"]
    max_steps: 10
    plugin_opt: {eviction.sink_tokens: 8}

A run's ``config.json`` (written by every ``pte train``) holds its options under ``args`` and
loads back the same way, so ``pte train --config runs/pte/config.json`` repeats the run. Keys
are checked before anything loads: an unknown one fails with its name, a suggestion and the
allowed keys.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import click

NOT_IN_FILE = {"config_file", "dry_run", "resume", "node_rank"}  # one invocation (or node), not the run


def _keys(command: click.Command) -> dict[str, click.Option]:
    """Every accepted key (flag names with _ or -, and the option's own name) -> its option."""
    out = {}
    for p in command.params:
        if not isinstance(p, click.Option) or p.name in NOT_IN_FILE:
            continue
        for flag in p.opts:
            if flag.startswith("--"):
                out[flag[2:].replace("-", "_")] = p
        out[p.name] = p
    return out


def read_run_config(path: str, command: click.Command) -> dict[str, Any]:
    """The file's options as a click ``default_map`` (option name -> value)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise click.BadParameter(f"{path}: {err.strerror or err}", param_hint="--config") from None
    try:
        if file.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as err:  # yaml.YAMLError / json.JSONDecodeError: both carry line and column
        raise click.BadParameter(f"{path}: not valid {file.suffix.lstrip('.') or 'JSON'}: {err}",
                                 param_hint="--config") from None
    if isinstance(data, dict) and isinstance(data.get("args"), dict):
        data = data["args"]  # a run's config.json
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: expected a mapping of option names to values", param_hint="--config")
    keys = _keys(command)
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        option = keys.get(name)
        if option is None:
            close = difflib.get_close_matches(name, keys, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            allowed = sorted({next((f[2:].replace("-", "_") for f in o.opts if f.startswith("--")), o.name)
                              for o in keys.values()})
            raise click.BadParameter(f"{path}: unknown key '{key}'{hint}; allowed: {', '.join(allowed)}",
                                     param_hint="--config")
        if option.name == "plugin_opts" and isinstance(value, dict):
            value = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in value.items()]
        if option.multiple and not isinstance(value, (list, tuple)):
            value = [value]
        out[option.name] = value
    return out


def load_config_option(ctx: click.Context, param, value):
    """Eager ``--config`` callback: the file's options become the defaults of the other flags."""
    if value is not None:
        ctx.default_map = {**(ctx.default_map or {}), **read_run_config(value, ctx.command)}
    return value


def run_args(kw: dict) -> dict[str, Any]:
    """This invocation's options, in the form ``--config`` reads back (for config.json)."""
    out = {}
    for key, value in kw.items():
        if key in NOT_IN_FILE:
            continue
        if key == "rewards":
            value = [f"{name}:{weight}" for name, weight in value]
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out
