"""``pte train``: cache-aware GRPO from registry names, on one process or under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click

from pte_rl.config import default  # every default of a training option is declared there, once

from .main import cache_options, cli, model_options, validate_common
from .options import PluginName, field_options
from .runconfig import load_config_option

DEFAULT_DATA = "built-in arithmetic (pte data arithmetic --n 256 --seed 0)"
DEFAULT_EVAL = "64 built-in arithmetic problems from another seed, none of them in the training set"


@cli.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, is_eager=True,
              callback=load_config_option,
              help="YAML or JSON file of options by flag name (a run's config.json too); flags given "
                   "here override it.")
@model_options
@cache_options
@click.option("--dynamic-window/--no-dynamic-window", default=None,
              help="Generated-token window = longest prompt of the batch, fixed at prefill (the paper's setting). "
                   "[default: on, off when --cache-window is given]")
@click.option("--reward", "rewards", type=PluginName("reward", weighted=True), multiple=True,
              help="Reward NAME[:WEIGHT] from the registry, or a Python function FILE.py:FN[:WEIGHT] / "
                   "MODULE:FN[:WEIGHT] called as fn(completions, answers, **columns) -> list of float "
                   "or None; repeatable [default: math].")
@click.option("--data", "data_path", type=click.Path(dir_okay=False), default=None,
              help="Data file (.jsonl, .json, .csv, .parquet) or a saved datasets folder with a prompt and an "
                   f"answer per row [default: {DEFAULT_DATA}].")
@field_options
@click.option("--skip-bad-rows", is_flag=True, help="Report and skip malformed data rows instead of stopping.")
@click.option("--eval-data", "eval_path", type=click.Path(dir_okay=False), default=None,
              help="JSONL held-out set: greedy accuracy before, during (--eval-every) and after training "
                   f"[default with built-in data: {DEFAULT_EVAL}; otherwise none].")
@click.option("--eval-every", type=click.IntRange(0), default=default("eval_every"), show_default=True,
              help="Held-out eval every N steps (0: only before and after training).")
@click.option("--output-dir", default=default("output_dir"), show_default=True, help="Checkpoints, metrics, TensorBoard.")
@click.option("--max-steps", type=click.IntRange(1), default=default("max_steps"), show_default=True)
@click.option("--prompts-per-step", type=click.IntRange(1), default=default("prompts_per_step"), show_default=True,
              help="Prompts per optimizer step on each rank.")
@click.option("--group-size", "--num-generations", "group_size", type=click.IntRange(2), default=default("group_size"),
              show_default=True, help="Completions per prompt.")
@click.option("--max-new-tokens", type=click.IntRange(1), default=default("max_new_tokens"), show_default=True)
@click.option("--temperature", type=click.FloatRange(0, min_open=True), default=default("temperature"), show_default=True)
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=default("top_p"), show_default=True)
@click.option("--learning-rate", "--lr", "learning_rate", type=click.FloatRange(0, min_open=True),
              default=default("learning_rate"), show_default=True)
@click.option("--lr-scheduler", type=click.Choice(["constant", "linear", "cosine"]), default=default("lr_scheduler"),
              show_default=True)
@click.option("--warmup-steps", type=click.IntRange(0), default=default("warmup_steps"), show_default=True)
@click.option("--weight-decay", type=click.FloatRange(0), default=default("weight_decay"), show_default=True)
@click.option("--max-grad-norm", type=click.FloatRange(0, min_open=True), default=default("max_grad_norm"), show_default=True)
@click.option("--beta", type=click.FloatRange(0), default=default("beta"), show_default=True,
              help="KL weight to the full-cache base model (0 skips the reference pass).")
@click.option("--epsilon", type=click.FloatRange(0, min_open=True), default=default("epsilon"), show_default=True)
@click.option("--epsilon-high", type=click.FloatRange(0, min_open=True), default=None,
              help="Upper clip (DAPO uses 0.28) [default: epsilon].")
@click.option("--num-iterations", type=click.IntRange(1), default=default("num_iterations"), show_default=True,
              help="Optimizer steps per batch of rollouts (ratio clipping matters when > 1).")
@click.option("--loss-type", type=click.Choice(["grpo", "dr_grpo", "dapo"]), default=default("loss_type"), show_default=True)
@click.option("--scale-rewards/--no-scale-rewards", default=default("scale_rewards"), show_default=True,
              help="Divide advantages by the group std (off: Dr. GRPO).")
@click.option("--mask-truncated", is_flag=True, help="Completions cut at --max-new-tokens get no loss.")
@click.option("--rollout-sub-batch-size", type=click.IntRange(1), default=default("rollout_sub_batch_size"), show_default=True,
              help="Rows per rollout pass (decode streams the weights once per step, so wider is nearly free).")
@click.option("--reference-sub-batch-size", type=click.IntRange(1), default=default("reference_sub_batch_size"), show_default=True,
              help="Rows per full-cache reference pass (its cache grows with length).")
@click.option("--replay-sub-batch-size", type=click.IntRange(1), default=default("replay_sub_batch_size"), show_default=True,
              help="Rows per replay pass with gradients (bounds backward memory).")
@click.option("--replay-chunk", type=click.IntRange(1), default=default("replay_chunk"), show_default=True,
              help="Max tokens per replay chunk (bounds backward memory).")
@click.option("--replay-graph", type=click.Choice(["window", "chunk", "exact"]), default=default("replay_graph"), show_default=True,
              help="How far a chunk's loss reaches back: window = the prompt and every cached token (memory "
                   "bounded by the window); chunk = the chunk alone (cheapest, biased); exact = everything "
                   "(memory grows with length; for checks).")
@click.option("--lora-alpha", type=click.FloatRange(0, min_open=True), default=None,
              help="LoRA alpha (scale alpha/r) [default: r].")
@click.option("--target-modules", default=None,
              help='Comma-separated module names or "all-linear" [default: q_proj,k_proj,v_proj,o_proj].')
@click.option("--amp-dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default=None,
              help="Base model dtype (adapters stay fp32) [default: bf16 on CUDA, fp32 on CPU].")
@click.option("--compile", "compile", is_flag=True,
              help="torch.compile the decoder blocks the bounded cache does not touch (MLP, norms). "
                   "Pays off on CUDA; measured slower on a 2-core CPU.")
@click.option("--save-every", type=click.IntRange(0), default=default("save_every"), show_default=True,
              help="Checkpoint every N steps (0: only at the end).")
@click.option("--save-total-limit", type=click.IntRange(1), default=None,
              help="Keep only the newest K checkpoints [default: all].")
@click.option("--log-completions", type=click.IntRange(0), default=default("log_completions"), show_default=True,
              help="Write N sampled completions per step (text, reward parts, length, evictions) to "
                   "OUTPUT_DIR/completions.jsonl and TensorBoard.")
@click.option("--resume", is_flag=True, help="Continue from the latest complete checkpoint in --output-dir.")
@click.option("--seed", type=int, default=default("seed"), show_default=True)
@click.option("--profile-steps", type=click.IntRange(0), default=default("profile_steps"), show_default=True,
              help="Write a torch profiler trace of the first N steps to OUTPUT_DIR/profile.")
@click.option("--no-tensorboard", is_flag=True, help="Only write metrics.jsonl.")
@click.option("--system", default=None, help="System message for the chat template.")
@click.option("--nproc-per-node", type=click.IntRange(1), default=1, show_default=True,
              help="Launch this many processes with torchrun (gloo on CPU, nccl on CUDA).")
@click.option("--dry-run", is_flag=True, help="Validate everything, print the resolved config, load nothing.")
def train(**kw):
    """Train the adapter with cache-aware GRPO (the main job).

    With no options: SmolLM2-135M-Instruct, built-in arithmetic data, lru-prompt-keep cache,
    progressive thought encoder, math reward, 10 steps of 4 prompts x 8 completions; reports
    greedy accuracy on 64 held-out problems before and after.
    """
    from .scoring import reward_configs
    from .training import run_train

    if kw["amp_dtype"] is not None:
        if kw["dtype"] is not None and kw["dtype"] != kw["amp_dtype"]:
            raise click.UsageError("--dtype and --amp-dtype disagree; give one of them")
        kw["dtype"] = kw["amp_dtype"]
    dynamic = kw["dynamic_window"]
    if dynamic is None:
        dynamic = kw["cache_window"] is None
    choices = validate_common(kw["backend"], kw["model"], kw["device"], kw["dtype"], kw["plugin_opts"],
                              kw["eviction"], kw["cache_window"], kw["evict_ratio"], kw["sink_tokens"],
                              kw["encoder"], dynamic)
    reward_configs(kw["rewards"] or (("math", 1.0),), choices["extra"])
    # every user mistake is reported here, once, before torchrun starts processes that would each
    # report it (and torchrun would add its own traceback)
    if kw["nproc_per_node"] > 1 and "RANK" not in os.environ and not kw["dry_run"]:
        _launch_torchrun(kw["nproc_per_node"])
        return
    run_train(choices, kw)


def _launch_torchrun(nproc: int) -> None:
    args = sys.argv[1:]
    cleaned, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "--nproc-per-node":
            skip = True
            continue
        if a.startswith("--nproc-per-node="):
            continue
        cleaned.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--standalone",
           "-m", "pte_cli", *cleaned]
    click.echo("launching: " + " ".join(cmd), err=True)
    sys.exit(subprocess.call(cmd))


__all__ = ["train", "json"]
