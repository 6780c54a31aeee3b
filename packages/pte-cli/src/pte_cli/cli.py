"""The ``pte`` command: the group, and one module per subcommand (options beside its body)."""

from __future__ import annotations

import sys

import click

from . import __version__
from .datasets import data
from .evaluate import eval_command
from .export import export
from .generate import generate
from .plugins import plugins
from .registry import KINDS, RegistryError
from .report import report
from .scoring import score
from .train import train


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="pte")
def cli():
    """Train reasoning models with RL under a fixed-size KV cache (Progressive Thought Encoding).

    \b
    Main job:   pte train            (GRPO on the built-in model and arithmetic data)
    Try it:     pte generate --prompt "What is 12 + 7?"
    Plugins:    pte plugins
    """


for command in (train, generate, eval_command, score, report, export, data, plugins):
    cli.add_command(command)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except RegistryError as err:  # plugin problems found late (e.g. a broken third-party plugin)
        click.echo(f"Error: {err}", err=True)
        sys.exit(2)


__all__ = ["cli", "main", "KINDS"]
