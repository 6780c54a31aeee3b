"""The ``pte`` command line."""

from __future__ import annotations

import json

import click

from . import __version__
from .options import PluginName, field_options, parse_plugin_opts, plugin_config, read_data
from .registry import KINDS, RegistryError, get_registry


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="pte")
def cli():
    """Train reasoning models with RL under a fixed-size KV cache (Progressive Thought Encoding).

    \b
    Main job:   pte train            (GRPO on the built-in model and arithmetic data)
    Try it:     pte generate --prompt "What is 12 + 7?"
    Plugins:    pte plugins
    """


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def plugins(as_json):
    """List every registered plugin name, its kind and the distribution providing it."""
    try:
        rows = get_registry().rows()
    except RegistryError as err:
        raise click.ClickException(str(err)) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in ("kind", "name")}
    prov = max(len("provider"), *(len(f"{r['provider']} {r['version']}") for r in rows))
    click.echo(f"{'KIND':<{widths['kind']}}  {'NAME':<{widths['name']}}  {'PROVIDER':<{prov}}  HELP")
    for r in rows:
        provider = f"{r['provider']} {r['version']}".strip()
        click.echo(f"{r['kind']:<{widths['kind']}}  {r['name']:<{widths['name']}}  {provider:<{prov}}  {r['help']}")


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


@cli.command()
@model_options
@cache_options
@click.option("--prompt", "prompts", multiple=True, help="A prompt (repeatable).")
@click.option("--prompts-file", type=click.Path(dir_okay=False), default=None,
              help="JSONL file with a 'prompt' field per row.")
@click.option("--adapter", default=None, help="Folder of a saved adapter.")
@click.option("--max-new-tokens", type=click.IntRange(1), default=256, show_default=True)
@click.option("--min-new-tokens", type=click.IntRange(0), default=0, show_default=True)
@click.option("--temperature", type=click.FloatRange(0), default=0.0, show_default=True,
              help="0 means greedy.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option("--system", default=None, help="System message for the chat template.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per prompt on stdout.")
def generate(backend, model, device, dtype, plugin_opts, eviction, cache_window, evict_ratio, sink_tokens,
             encoder, prompts, prompts_file, adapter, max_new_tokens, min_new_tokens, temperature, top_p,
             seed, batch_size, system, as_json):
    """Generate completions under a bounded KV cache (with thought encoding)."""
    from .generate import run_generate

    choices = validate_common(backend, model, device, dtype, plugin_opts, eviction, cache_window,
                              evict_ratio, sink_tokens, encoder)
    texts = list(prompts)
    if prompts_file:
        rows, _ = read_data(prompts_file, ("prompt",))
        texts += [r["prompt"] for r in rows]
    if not texts:
        raise click.UsageError("give at least one --prompt or a --prompts-file")
    run_generate(choices, texts, adapter=adapter, explicit_encoder=encoder is not None,
                 max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                 temperature=temperature, top_p=top_p, seed=seed, batch_size=batch_size,
                 system=system, as_json=as_json)


@cli.command()
@click.option("--reward", "rewards", type=PluginName("reward", weighted=True), multiple=True,
              help="Reward NAME[:WEIGHT], or a function FILE.py:FN[:WEIGHT] / MODULE:FN[:WEIGHT] (repeatable) [default: math].")
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
    from .scoring import run_score

    run_score(rewards or (("math", 1.0),), input_path, output, skip_bad_rows, parse_plugin_opts(plugin_opts),
              {"completion": completion_field, "answer": answer_field})


@cli.group()
def data():
    """Generate datasets the project ships (JSONL with prompt and answer)."""


@data.command("arithmetic")
@click.option("--n", type=click.IntRange(1), default=256, show_default=True, help="Number of problems.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-operand", type=click.IntRange(2), default=20, show_default=True,
              help="Operands are drawn from 1..N.")
@click.option("--max-terms", type=click.IntRange(2, 3), default=2, show_default=True,
              help="2: only 'a op b'; 3: also 'a op b op c' (a third of the rows).")
@click.option("--operators", default="+-*", show_default=True, help="Operators to draw from (any of + - *).")
def data_arithmetic(n, seed, max_operand, max_terms, operators):
    """Synthetic arithmetic problems with a boxed-answer instruction, JSONL to stdout.

    The defaults are the default `pte train` job's training data (with --seed 0).
    """
    from .datasets import arithmetic

    if not operators or set(operators) - set("+-*"):
        raise click.BadParameter(f"{operators!r}: use one or more of + - *", param_hint="--operators")
    for row in arithmetic(n, seed, max_operand, max_terms, operators):
        click.echo(json.dumps(row))





@cli.command("eval")
@model_options
@lambda f: cache_options(f, with_window=False)
@click.option("--dataset", "datasets", multiple=True, required=True, type=click.Path(),
              help="Data file (.jsonl, .json, .csv, .parquet) or saved datasets folder with prompt and answer "
                   "(id, source optional); repeatable.")
@field_options
@click.option("--adapter", default=None, help="Adapter folder, or 'none' for the base model [default: none].")
@click.option("--cache-window", "cache_windows", multiple=True,
              help="Cache budget (tokens, prompt included) or 'full'; repeatable [default: full].")
@click.option("--samples", type=click.IntRange(1), default=1, show_default=True, help="Samples per problem (K).")
@click.option("--max-new-tokens", type=click.IntRange(1), default=512, show_default=True)
@click.option("--temperature", type=click.FloatRange(0), default=0.0, show_default=True, help="0 means greedy.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="First N problems of each dataset.")
@click.option("--reward", "rewards", type=PluginName("reward", weighted=True), multiple=True,
              help="Reward NAME[:WEIGHT], or a function FILE.py:FN[:WEIGHT] / MODULE:FN[:WEIGHT] [default: math].")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option("--system", default=None, help="System message for the chat template.")
@click.option("--output", default=None, help="Folder for results.json and samples.jsonl (resumable).")
def eval_command(**kw):
    """Accuracy under cache budgets: pass@1, pass@K, length, truncation, evictions per dataset."""
    from .evaluate import parse_budgets, run_eval

    parse_budgets(kw["cache_windows"])
    choices = validate_common(kw["backend"], kw["model"], kw["device"], kw["dtype"], kw["plugin_opts"],
                              kw["eviction"], None, kw["evict_ratio"], kw["sink_tokens"], kw["encoder"])
    run_eval(choices, kw)


@cli.command()
@click.argument("results", nargs=-1)
@click.option("--label", "labels", multiple=True, help="Name of each run, in order (e.g. Baseline LoRA PTE).")
@click.option("--output", default=None, help="Write the Markdown table here too.")
@click.option("--plot", "plot_path", default=None,
              help="Write a PNG: accuracy vs cache window with 95% intervals (or the --curves). Needs matplotlib.")
@click.option("--curves", multiple=True, metavar="RUN",
              help="A `pte train` output folder (or metrics.jsonl): plot reward, held-out accuracy, KL and "
                   "length per step; repeatable.")
def report(results, labels, output, plot_path, curves):
    """Put `pte eval` results side by side (Markdown tables, accuracy-vs-window plot), or draw
    training curves of `pte train` runs (--curves)."""
    from .report import run_report

    run_report(results, labels, output, plot_path, curves)
__all__ = ["cli", "KINDS"]
