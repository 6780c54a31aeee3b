"""Write docs/configuration.md: every field of a run config, generated from the pydantic models.

The reference walks :class:`pte_rl.config.RunConfig` and every pydantic model nested in it
(PluginChoice, RewardChoice, LoRAConfig, DataConfig, TrainConfig), then the option models of the
built-in plugins (backend, eviction policies, thought encoders, rewards). For each field it gives
the path, the ``pte train`` flag where one exists, the type with its bounds, the default and the
``Field(description=...)`` text. Nothing here loads torch or a model.

    python scripts/gen_config_reference.py            # print the Markdown
    python scripts/gen_config_reference.py --write    # rewrite docs/configuration.md
    python scripts/gen_config_reference.py --check    # exit 1 if docs/configuration.md is stale

``tests/test_docs.py`` fails when the file and the models disagree.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "configuration.md"

# built-in plugins, by the module their distribution's `pte` entry point names (not the installed
# entry points: a third-party plugin in the environment must not change this file)
BUILTIN_PLUGINS = {"pte-cache": "pte_cache.plugin", "pte-thought": "pte_thought.plugin", "pte-rl": "pte_rl.plugin"}

# config paths whose `pte train` flag has another name than the field
FLAG_ALIASES = {"data.train": "data_path", "data.eval": "eval_path"}

HEADER = """\
Every field of a run config and of the built-in plugins' options: its flag, type, default and meaning.

# Configuration reference

Generated from the pydantic models (`pte_rl.config.RunConfig` and the models in it, and the
built-in plugins' option models) by `python scripts/gen_config_reference.py --write`; do not edit
by hand (`tests/test_docs.py` fails when this file and the models disagree).

A run config is what `pte train --dry-run` prints, what `config.json` and every checkpoint record,
and what `pte_cli.train.run_train(run)` takes (see [usage.md](usage.md)). `--config FILE` takes
the flags, not these paths. Defaults below are the models' own; `pte train` fills a few from other
options: `lora.r` and `lora.global_tokens` follow the encoder's `rank` and `global_tokens`,
`lora.lora_alpha` defaults to `r`, the eviction option `dynamic_window` is on unless
`--cache-window` is given, and `rewards` defaults to `[math]`. A plugin option without a flag is
set with `-o KIND.FIELD=VALUE`.
"""


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def type_name(t) -> str:
    origin, args = typing.get_origin(t), typing.get_args(t)
    if t is type(None):
        return "None"
    if t is typing.Any:
        return "any"
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(type_name(a) for a in args)
    if origin in (list, dict, tuple, set):
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    if isinstance(t, type):
        return t.__name__
    return str(t).replace("typing.", "")


def bounds(info) -> str:
    words = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "min_length": "length >=", "max_length": "length <="}
    parts = []
    for meta in info.metadata:
        for attr, word in words.items():
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{word} {value}")
    return ", ".join(parts)


def default_of(info) -> str:
    if info.is_required():
        return "required"
    value = info.default_factory() if info.default_factory is not None else info.default
    if isinstance(value, BaseModel):
        return "its fields' defaults"
    return f"`{json.dumps(value)}`"


def nested_model(t):
    """The pydantic model a field holds (directly, in a list, or in an optional), else None."""
    if isinstance(t, type) and issubclass(t, BaseModel):
        return t
    for arg in typing.get_args(t):
        found = nested_model(arg)
        if found is not None:
            return found
    return None


def cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def train_flags() -> dict[str, str]:
    """`pte train`'s flags by click parameter name (``no_tensorboard`` included)."""
    from pte_cli.train import train

    return {p.name: " / ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts]) for p in train.params}


def flag_of(field: str, flags: dict[str, str], fallback: str = "") -> str:
    return flags.get(field) or flags.get(f"no_{field}") or fallback


def table(model: type[BaseModel], paths: list[str], flags: dict[str, str], option_kind: str | None = None,
          sections: dict[type, str] | None = None) -> list[str]:
    lines = ["| field | flag | type | default | description |", "|---|---|---|---|---|"]
    prefix = "" if not paths else paths[0] if len(paths) == 1 else "{" + ",".join(paths) + "}"
    for name, info in model.model_fields.items():
        kind = type_name(info.annotation)
        limits = bounds(info)
        if limits:
            kind += f" ({limits})"
        description = cell(info.description)
        inner = nested_model(info.annotation)
        if sections is not None and inner is not None and inner in sections:
            description = (description + " " if description else "") + f"See [{sections[inner]}](#{slug(sections[inner])})."
        fallback = f"`-o {option_kind}.{name}=…`" if option_kind else ""
        path = f"{prefix}.{name}" if prefix else name
        flag = flags.get(FLAG_ALIASES.get(path, "")) or flag_of(name, flags, fallback)
        lines.append(f"| `{path}` | {flag} | {kind} | {default_of(info)} | {description} |")
    return lines


def model_sections(root: type[BaseModel]) -> list[tuple[type[BaseModel], list[str]]]:
    """Every model reachable from ``root`` with the field paths it sits at, root first."""
    found: dict[type, list[str]] = {root: [""]}
    order = [root]
    queue = [(root, "")]
    while queue:
        model, prefix = queue.pop(0)
        for name, info in model.model_fields.items():
            inner = nested_model(info.annotation)
            if inner is None:
                continue
            is_list = typing.get_origin(info.annotation) is list
            path = f"{prefix}.{name}" if prefix else name
            path += "[]" if is_list else ""
            if inner not in found:
                found[inner] = []
                order.append(inner)
                queue.append((inner, path))
            found[inner].append(path)
    return [(m, found[m]) for m in order]


def builtin_plugins():
    """``[(kind, [names], config model, [help])]`` of the built-in plugins, grouped by model."""
    from pte_cli.registry import KINDS, Registry

    registry = Registry()
    for provider, module in BUILTIN_PLUGINS.items():
        registry.add_plugin(importlib.import_module(module), name=provider, provider=provider)
    groups = []
    for kind in KINDS:
        by_model: dict[object, tuple[list[str], list[str]]] = {}
        for entry in registry.entries[kind].values():
            names, helps = by_model.setdefault(entry.config, ([], []))
            names.append(entry.name)
            helps.append(f"`{entry.name}`: {entry.help}")
        groups.extend((kind, names, model, helps) for model, (names, helps) in by_model.items())
    return groups


def render() -> str:
    from pte_rl.config import RunConfig

    flags = train_flags()
    sections = model_sections(RunConfig)
    titles = {m: ("RunConfig" if paths == [""] else f"{', '.join(paths)}: {m.__name__}") for m, paths in sections}
    out = [HEADER]
    for model, paths in sections:
        out.append(f"## {titles[model]}\n")
        if model.__doc__:
            out.append(" ".join(model.__doc__.split()) + "\n")
        out.extend(table(model, [p for p in paths if p], flags, sections=titles))
        out.append("")
    out.append("## Plugin options (built-in)\n")
    out.append("The `options` of `backend`, `eviction`, `encoder` and of each reward are checked against the\n"
               "chosen plugin's own model. `pte plugins` lists every plugin installed, third-party ones too.\n")
    option_kind = {"eviction": "eviction", "encoder": "encoder", "reward": "reward", "backend": "backend"}
    for kind, names, model, helps in builtin_plugins():
        path = "rewards[]" if kind == "reward" else kind
        out.append(f"### {kind}: {', '.join(names)}\n")
        out.append("\n".join(f"- {cell(h)}" for h in helps) + "\n")
        if model is None or not model.model_fields:
            out.append("No options.\n")
            continue
        out.extend(table(model, [f"{path}.options"], flags, option_kind=option_kind[kind]))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"rewrite {TARGET.relative_to(ROOT)}")
    group.add_argument("--check", action="store_true", help="exit 1 when the file is not up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        TARGET.parent.mkdir(parents=True, exist_ok=True)
        TARGET.write_text(text, encoding="utf-8")
        print(f"wrote {TARGET.relative_to(ROOT)}")
    elif args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run `python scripts/gen_config_reference.py --write`")
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
