"""Assemble the ``pte`` command: the group plus every subcommand module."""

from __future__ import annotations

import sys

import click

from . import export as _export  # noqa: F401  (registers `pte export`)
from . import train as _train  # noqa: F401  (registers `pte train`)
from .main import cli
from .registry import RegistryError


def main() -> None:
    try:
        cli(standalone_mode=True)
    except RegistryError as err:  # plugin problems found late (e.g. a broken third-party plugin)
        click.echo(f"Error: {err}", err=True)
        sys.exit(2)


__all__ = ["cli", "main"]
