"""``pte export``: a plain-LoRA adapter merged into a standalone transformers model folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import click

from .main import cli, validate_common


@cli.command("export")
@click.argument("adapter", type=click.Path(file_okay=False))
@click.option("--merge", is_flag=True, help="Fold the LoRA into the base weights (W + alpha/r * B A).")
@click.option("--output", required=True, type=click.Path(), help="New folder for the merged model.")
@click.option("--model", default=None, help="Base model [default: the one the adapter was trained on].")
@click.option("--dtype", default="float32", show_default=True, help="float32, bfloat16 or float16.")
def export(adapter, merge, output, model, dtype):
    """Write ADAPTER merged into its base model as a transformers folder (safetensors).

    Only adapters trained with encoder `none` (plain LoRA) can be merged: a thought state S
    changes with every eviction, so W + (alpha/r) A S B has no fixed weight to fold into.
    """
    from pte_lora import read_manifest

    from .build import adapter_encoder, load_model

    if not merge:
        raise click.UsageError("nothing to do without --merge (an encoder 'none' adapter folder already "
                               "loads in PEFT as it is)")
    try:
        manifest = read_manifest(adapter)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    encoder = adapter_encoder(adapter, None, explicit=False)  # the encoder it was trained with
    if getattr(encoder.build(), "carries_state", True):
        raise click.UsageError(
            f"{adapter}: encoder '{manifest.encoder}' carries a thought state S that changes with every "
            "eviction event, so y = Wx + (alpha/r) A S B x has no fixed weight to merge into. Only "
            "encoder 'none' adapters (plain LoRA) can be merged; use this one with `pte generate/eval "
            "--adapter`.")
    out = Path(output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise click.UsageError(f"--output {out}: exists and is not empty; choose a new folder")
    choices = validate_common("hf", model or manifest.base_model or None, "cpu", dtype, ())
    pte, tokenizer = load_model(choices["backend"], encoder, adapter)
    merged = pte.lora.merge()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:  # written whole or not at all
        merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    click.echo(f"pte export: {adapter} merged into {manifest.base_model or model} -> {out}")
