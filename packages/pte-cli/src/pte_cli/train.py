"""``pte train``: cache-aware GRPO from registry names, on one process or under torchrun.

The options are turned into one validated :class:`pte_rl.config.RunConfig` (``build_run``);
``--dry-run`` prints it, ``config.json`` and every checkpoint record it, and :func:`run_train`
builds the model, cache policy, rewards and data from it alone. Training options take their
default, range and help from the config's fields (``field_option``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click

from pte_rl.backends import DEFAULT_MODEL
from pte_rl.config import DataConfig, PluginChoice, RewardChoice, RunConfig

from .build import choice_of, load_model, require_fits, template_sha256
from .datasets import BUILTIN_CACHE_WINDOW
from .options import (
    DEFAULT_REWARDS,
    cache_options,
    field_option,
    field_options,
    model_options,
    reward_option,
    system_option,
    validate_common,
)
from .runconfig import load_config_option, run_args
from .scoring import reward_configs, rewards_of

DEFAULT_DATA = "built-in arithmetic (pte data arithmetic --n 256 --seed 0)"
DEFAULT_EVAL = "128 built-in arithmetic problems from another seed, none of them in the training set"


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, is_eager=True,
              callback=load_config_option,
              help="YAML or JSON file of options by flag name (a run's config.json too); flags given "
                   "here override it.")
@model_options
@cache_options
@click.option("--dynamic-window/--no-dynamic-window", default=None,
              help="Generated-token window = longest prompt of the batch, fixed at prefill (the paper's setting). "
                   "[default: on, off when --cache-window is given; with the built-in data and neither flag: "
                   f"--cache-window {BUILTIN_CACHE_WINDOW}, so its worked answers outgrow the window]")
@reward_option
@click.option("--data", "data_path", type=click.Path(dir_okay=False), default=None,
              help="Data file (.jsonl, .json, .csv, .parquet) or a saved datasets folder with a prompt and an "
                   f"answer per row [default: {DEFAULT_DATA}].")
@field_options
@click.option("--skip-bad-rows", is_flag=True, help="Report and skip malformed data rows instead of stopping.")
@click.option("--eval-data", "eval_path", type=click.Path(dir_okay=False), default=None,
              help="Held-out data: greedy accuracy before, during (--eval-every) and after training "
                   f"[default with built-in data: {DEFAULT_EVAL}; otherwise none].")
@field_option("--eval-every")
@field_option("--eval-batch-size")
@field_option("--eval-full-cache/--no-eval-full-cache")
@field_option("--output-dir")
@field_option("--max-steps")
@field_option("--prompts-per-step")
@field_option("--group-size", "--num-generations")
@field_option("--max-new-tokens")
@field_option("--temperature")
@field_option("--top-p")
@field_option("--learning-rate", "--lr", field="learning_rate")
@field_option("--lr-scheduler")
@field_option("--warmup-steps")
@field_option("--weight-decay")
@field_option("--max-grad-norm")
@field_option("--beta")
@field_option("--epsilon")
@field_option("--epsilon-high")
@field_option("--entropy-coef")
@field_option("--num-iterations")
@field_option("--loss-type")
@field_option("--scale-rewards/--no-scale-rewards")
@field_option("--mask-truncated")
@field_option("--rollout-sub-batch-size")
@field_option("--reference-sub-batch-size")
@field_option("--replay-sub-batch-size")
@field_option("--replay-chunk")
@field_option("--replay-graph")
@click.option("--lora-alpha", type=click.FloatRange(0, min_open=True), default=None,
              help="LoRA alpha (scale alpha/r) [default: r].")
@click.option("--target-modules", default=None,
              help='Comma-separated module names or "all-linear" [default: q_proj,k_proj,v_proj,o_proj].')
@click.option("--amp-dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default=None,
              help="Same as --dtype: the frozen base model's dtype (adapters stay fp32).")
@field_option("--compile")
@field_option("--save-every")
@field_option("--save-total-limit")
@field_option("--log-completions")
@field_option("--resume")
@field_option("--init-adapter", type=click.Path(exists=True, file_okay=False))
@field_option("--seed")
@field_option("--profile-steps")
@click.option("--no-tensorboard", is_flag=True, help="Only write metrics.jsonl.")
@system_option
@click.option("--nproc-per-node", type=click.IntRange(1), default=1, show_default=True,
              help="Launch this many processes with torchrun (gloo on CPU, nccl on CUDA).")
@click.option("--nnodes", type=click.IntRange(1), default=1, show_default=True,
              help="Nodes in the job; with more than 1, run the same command on every node with its --node-rank.")
@click.option("--node-rank", type=click.IntRange(0), default=0, show_default=True, help="This node's rank (0..nnodes-1).")
@click.option("--rdzv-endpoint", default=None, metavar="HOST:PORT",
              help="Where the nodes meet (torchrun's c10d rendezvous, usually node 0); needed with --nnodes > 1.")
@click.option("--dry-run", is_flag=True, help="Validate everything, print the resolved run config and a per-rank "
              "memory estimate (from the model's config; no weights loaded).")
def train(**kw):
    """Train the adapter with cache-aware GRPO (the main job).

    With no options: SmolLM2-135M-Instruct, built-in arithmetic data (worked answers),
    lru-prompt-keep cache that holds the prompt and the newest ~25 generated tokens, progressive
    thought encoder, math reward, 10 steps of 4 prompts x 8 completions; reports greedy accuracy on
    128 held-out problems before and after, under the training cache and the full cache.
    """
    run = build_run(kw)  # every user mistake is reported here, once, before torchrun starts
    if kw["nnodes"] > 1 and not kw["rdzv_endpoint"]:
        raise click.UsageError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (an address every node reaches, "
                               "usually node 0's), the same on every node")
    if kw["node_rank"] >= kw["nnodes"]:
        raise click.UsageError(f"--node-rank {kw['node_rank']} is not below --nnodes {kw['nnodes']}")
    if (kw["nproc_per_node"] > 1 or kw["nnodes"] > 1) and "RANK" not in os.environ and not kw["dry_run"]:
        # (each rank would report a mistake again, with torchrun's traceback)
        _launch_torchrun(kw["nproc_per_node"], kw["nnodes"], kw["node_rank"], kw["rdzv_endpoint"])
        return
    run_train(run, args=run_args(kw), dry_run=kw["dry_run"])


def build_run(kw: dict) -> RunConfig:
    """The validated run config of ``pte train``'s options (a usage error names the bad one)."""
    from pydantic import ValidationError

    from pte_rl.config import TrainConfig

    if kw["amp_dtype"] is not None:
        if kw["dtype"] is not None and kw["dtype"] != kw["amp_dtype"]:
            raise click.UsageError("--dtype and --amp-dtype disagree; give one of them")
        kw["dtype"] = kw["amp_dtype"]
    if kw["dtype"] == "float16":
        from pte_rl.backends import FP16_TRAINING

        raise click.UsageError(FP16_TRAINING)
    window, dynamic = kw["cache_window"], kw["dynamic_window"]
    if dynamic is None and window is None and kw["data_path"] is None:
        window, dynamic = BUILTIN_CACHE_WINDOW, False  # the built-in task's budget (see there)
    elif dynamic is None:
        dynamic = window is None
    choices = validate_common(kw["backend"], kw["model"], kw["device"], kw["dtype"], kw["plugin_opts"],
                              kw["eviction"], window, kw["evict_ratio"], kw["sink_tokens"], kw["encoder"], dynamic)
    rewards = [RewardChoice(name=name, weight=weight, options=config.model_dump() if config is not None else {})
               for name, _, config, weight in reward_configs(kw["rewards"] or DEFAULT_REWARDS, choices["extra"])]
    fields = {k: kw[k] for k in TrainConfig.model_fields if k in kw}
    fields["tensorboard"] = not kw["no_tensorboard"]
    try:
        config = TrainConfig(**fields)
    except ValidationError as err:
        e = err.errors()[0]
        raise click.UsageError(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}") from None
    lora = _lora_config(kw, choices["encoder"])
    if config.init_adapter:
        check_init_adapter(config.init_adapter, choices["backend"].config.model, lora, choices["encoder"])
    return RunConfig(
        **{kind: PluginChoice(name=choices[kind].name, options=choices[kind].options())
           for kind in ("backend", "eviction", "encoder")},
        lora=lora, rewards=rewards,
        data=DataConfig(train=kw["data_path"], eval=kw["eval_path"], prompt_field=kw["prompt_field"],
                        answer_field=kw["answer_field"], skip_bad_rows=kw["skip_bad_rows"]),
        system=kw["system"], train=config,
    )


def _lora_config(kw, encoder_choice):
    from pte_lora import LoRAConfig

    options = {}
    if kw["lora_alpha"] is not None:
        options["lora_alpha"] = kw["lora_alpha"]
    if kw["target_modules"]:
        t = kw["target_modules"].strip()
        options["target_modules"] = t if t == "all-linear" else [x.strip() for x in t.split(",") if x.strip()]
    rank = getattr(encoder_choice.config, "rank", 32)
    options.setdefault("lora_alpha", float(rank))
    return LoRAConfig(r=rank, global_tokens=getattr(encoder_choice.config, "global_tokens", rank), **options)


def load_data(data: DataConfig):
    """``(training problems, held-out problems)`` as the data config says."""
    from pte_rl.data import DataError, Problem, load_problems

    from .datasets import arithmetic, heldout_arithmetic

    fields = {"prompt": data.prompt_field, "answer": data.answer_field}

    def load(path):
        try:
            return load_problems(path, data.skip_bad_rows, fields)[0]
        except DataError as err:
            raise click.UsageError(str(err)) from None

    def builtin(rows):
        return [Problem(r["prompt"], r["answer"], {k: r[k] for k in ("id", "source")}) for r in rows]

    problems = builtin(arithmetic(256, 0)) if data.train is None else load(data.train)
    if data.eval is not None:
        held_out = load(data.eval)
    elif data.train is None:
        held_out = builtin(heldout_arithmetic(128, {p.prompt for p in problems}))
    else:
        held_out = []
    return problems, held_out


def memory_estimate(run: RunConfig, problems) -> dict:
    """The run's per-rank memory estimate (pte_rl.estimate), or why there is none. Prompt length:
    the longest prompt's characters / 3 plus 40 tokens of chat template (no tokenizer is loaded)."""
    from pte_rl.estimate import estimate_memory, model_shape

    try:
        shape = model_shape(run.backend.options.get("model", DEFAULT_MODEL))
    except (ValueError, OSError, KeyError) as err:
        return {"unavailable": str(err)}
    t, ev = run.train, run.eviction.options
    prompt = max((len(p.prompt) for p in problems), default=0) // 3 + 40
    full = prompt + t.max_new_tokens
    if run.eviction.name == "full" or not ("cache_window" in ev or ev.get("dynamic_window")):
        capacity = full
    elif ev.get("dynamic_window"):  # the window is the longest prompt: beside the prompt, or the sinks
        capacity = min(full, prompt + (ev["sink_tokens"] if "sink_tokens" in ev else prompt))
    else:
        capacity = min(full, max(int(ev["cache_window"]), prompt if run.eviction.name == "lru-prompt-keep" else 0))
    dtype = run.backend.options.get("dtype", "auto")
    lora = run.lora
    out = estimate_memory(
        shape, dtype_bytes=4 if dtype == "float32" else 2, prompt_tokens=prompt, capacity=capacity,
        max_new_tokens=t.max_new_tokens, rollout_rows=t.rollout_sub_batch_size,
        reference_rows=t.reference_sub_batch_size, replay_rows=t.replay_sub_batch_size, replay_chunk=t.replay_chunk,
        replay_graph=t.replay_graph, beta=t.beta, targets=lora.target_modules, rank=lora.r,
        global_tokens=lora.global_tokens, encoder=run.encoder.name)
    if dtype == "auto":
        out["assumed"]["base_dtype"] = "bfloat16 (what auto picks on a GPU from Ampere on)"
    return out


def run_train(run: RunConfig, args: dict | None = None, dry_run: bool = False) -> None:
    """Train as ``run`` says (``args``: the command-line form of the run, kept in config.json so
    ``pte train --config config.json`` repeats it)."""
    problems, eval_problems = load_data(run.data)
    if run.train.init_adapter:  # build_run checked it for the CLI; a RunConfig built in Python is checked here
        check_init_adapter(run.train.init_adapter, choice_of("backend", run.backend).config.model, run.lora,
                           choice_of("encoder", run.encoder))
    record = {**run.model_dump(mode="json"), "num_problems": len(problems),
              "num_eval_problems": len(eval_problems), **({"args": args} if args is not None else {})}
    if dry_run:
        record["memory_estimate"] = memory_estimate(run, problems)
        click.echo(json.dumps(record, indent=2))
        est = record["memory_estimate"]
        if "peak_gib" in est:
            click.echo(f"pte train: estimated peak memory per rank {est['peak_gib']} GiB (weights {est['weights']}, "
                       f"adapter + AdamW {est['adapter_and_optimizer']}, {est['peak_phase']} {est[est['peak_phase']]}; "
                       f"rollout {est['rollout']}, reference {est['reference']}, replay {est['replay']})", err=True)
        return

    import torch

    from pte_lora import AdapterManifest
    from pte_rl import chat_prompt, eos_ids
    from pte_rl.backends import FP16_TRAINING, dtype_reason, pick_device, pick_dtype
    from pte_rl.checkpoint import CheckpointError
    from pte_rl.distributed import init_distributed
    from pte_rl.files import write_json_atomic
    from pte_rl.memory import limit_heap_fragmentation
    from pte_rl.rewards.function import RewardFunctionError
    from pte_rl.trainer import Trainer, TrainerParts

    backend, eviction, encoder = (choice_of(kind, getattr(run, kind)) for kind in ("backend", "eviction", "encoder"))
    reward = rewards_of(run.rewards)
    device = pick_device(backend.config.device)
    if pick_dtype(backend.config.dtype, device) == torch.float16:
        raise click.UsageError(FP16_TRAINING)
    if device.type == "cuda" and torch.cuda.device_count() > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        backend.config = backend.config.model_copy(update={"device": str(device)})
    if device.type == "cpu":
        limit_heap_fragmentation()
    dist_info = init_distributed(device)
    torch.manual_seed(run.train.seed)
    t0 = time.time()
    # --init-adapter (checked above: its LoRA settings are run.lora); a checkpoint --resume finds replaces it
    pte, tokenizer = load_model(backend, encoder, adapter=run.train.init_adapter, lora=run.lora)
    policy = eviction.build()
    encoded = {}  # every prompt is tokenised once, and checked against the budget before training
    for rows, path, builtin in ((problems, run.data.train, "built-in data"),
                                (eval_problems, run.data.eval, "built-in held-out data")):
        for p in rows:
            if p.prompt not in encoded:
                encoded[p.prompt] = chat_prompt(tokenizer, p.messages or p.prompt, run.system)
            require_fits(policy, encoded[p.prompt], f"{path}:{p.line}" if p.line is not None else builtin)
    manifest = AdapterManifest(
        pte_version=_version(), base_model=backend.config.model, lora=run.lora, encoder=encoder.name,
        encoder_options=encoder.options(), eviction=eviction.name, eviction_options=eviction.options(),
        system=run.system, chat_template_sha256=template_sha256(tokenizer),
    )
    out = Path(run.train.output_dir)
    # what "auto" became on this machine: the base model's dtype and device, adapters always fp32
    record["resolved"] = {"device": str(device), "dtype": str(pte.dtype).removeprefix("torch."),
                          "dtype_reason": dtype_reason(backend.config.dtype, device), "adapter_dtype": "float32"}
    if dist_info.main:
        write_json_atomic(out / "config.json", record)
        t = run.train
        click.echo(f"pte train: base model {record['resolved']['dtype']} on {device} "
                   f"({record['resolved']['dtype_reason']}); adapters float32; global batch "
                   f"{t.prompts_per_step} prompts x {t.group_size} completions x {dist_info.world} "
                   f"rank{'s' if dist_info.world > 1 else ''} = {t.prompts_per_step * t.group_size * dist_info.world} "
                   f"completions per step", err=True)
    parts = TrainerParts(pte, tokenizer, eviction.build, reward, problems, manifest, eos_ids(pte.model, tokenizer),
                         encoded.__getitem__, eval_problems)
    trainer = Trainer(run.train, parts, run=run, dist_info=dist_info)
    try:
        with reward:
            result = trainer.train()
    except (CheckpointError, RewardFunctionError) as err:  # the user's folder or function: the message
        raise click.ClickException(str(err)) from None
    if dist_info.main:
        click.echo(_summary_line(result, run.train.max_steps, time.time() - t0, out))
    if dist_info.world > 1:
        import gc

        import torch.distributed as dist

        # Tear gloo down while the interpreter is fully alive: gloo threads still holding work
        # objects at finalisation can abort the process (SIGABRT) after a successful run.
        dist.barrier()
        dist.destroy_process_group()
        gc.collect()


def check_init_adapter(path: str, model: str, lora, encoder) -> None:
    """A usage error naming each field where the ``--init-adapter`` folder was made for another
    base model, LoRA shape or encoder than this run's."""
    from pte_lora import read_manifest

    try:
        manifest = read_manifest(path)
    except ValueError as err:
        raise click.UsageError(f"--init-adapter: {err}") from None
    wrong = [f"{what}: the adapter has {theirs!r}, this run {ours!r}" for what, theirs, ours in (
        ("base model", manifest.base_model, model),
        ("LoRA settings", manifest.lora.model_dump(), lora.model_dump()),
        ("encoder", manifest.encoder, encoder.name),
        ("encoder options", manifest.encoder_options, encoder.options())) if theirs != ours]
    if wrong:
        raise click.UsageError(f"--init-adapter {path} was not made for this run: " + "; ".join(wrong))


def _summary_line(result: dict, max_steps: int, seconds: float, out: Path) -> str:
    h = result["history"]
    k = max(1, min(5, len(h) // 2)) if h else 1
    first = sum(m["reward"] for m in h[:k]) / k if h else float("nan")
    last = sum(m["reward"] for m in h[-k:]) / k if h else float("nan")
    mean = lambda key: sum(m[key] for m in h) / len(h)  # noqa: E731
    evictions = (f"per completion {mean('evictions_per_completion'):.1f} eviction events, "
                 f"{mean('state_updates_per_completion'):.1f} state updates, "
                 f"{mean('evicted_tokens_per_event'):.1f} tokens per event; ") if h else ""
    return (f"pte train: steps {result['start_step']}->{max_steps} in {seconds:.0f}s; "
            f"mean reward first {k} steps {first:.3f} -> last {k} steps {last:.3f}; " + evictions
            + _heldout_line(result.get("eval_before"), result.get("eval_after"))
            + f"checkpoint {result['checkpoint']}; metrics {out / 'metrics.jsonl'}")


def _heldout_line(before, after) -> str:
    """``held-out accuracy 0.24 -> 0.41 (greedy, n=64, 95% CI ...) under the training cache;
    0.30 -> 0.45 [...] under the full cache;``, or nothing when there was no eval."""
    if not after:
        return ""
    parts = []
    for prefix, where in (("eval/", "training cache"), ("eval_full/", "full cache")):
        if f"{prefix}accuracy" not in after:
            continue
        ci = f"[{after[prefix + 'accuracy_ci_low']:.2f}, {after[prefix + 'accuracy_ci_high']:.2f}]"
        start = f"{before[prefix + 'accuracy']:.3f} -> " if before and prefix + "accuracy" in before else ""
        parts.append(f"{start}{after[prefix + 'accuracy']:.3f} {ci} under the {where}")
    return f"held-out accuracy (greedy, n={after['eval/n']}, 95% CI) " + "; ".join(parts) + "; "


LAUNCH_OPTIONS = ("--nproc-per-node", "--nnodes", "--node-rank", "--rdzv-endpoint")


def torchrun_command(argv: list[str], nproc: int, nnodes: int = 1, node_rank: int = 0,
                     endpoint: str | None = None) -> list[str]:
    """torchrun running ``pte`` with ``argv`` minus the launch options (which go to torchrun).
    One node: ``--standalone``; several: c10d rendezvous at ``endpoint``."""
    cleaned, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in LAUNCH_OPTIONS:
            skip = True
            continue
        if a.split("=", 1)[0] in LAUNCH_OPTIONS:
            continue
        cleaned.append(a)
    where = (["--standalone"] if nnodes == 1 else
             [f"--nnodes={nnodes}", f"--node-rank={node_rank}", "--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}"])
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", *where,
            "-m", "pte_cli", *cleaned]


def _launch_torchrun(nproc: int, nnodes: int, node_rank: int, endpoint: str | None) -> None:
    cmd = torchrun_command(sys.argv[1:], nproc, nnodes, node_rank, endpoint)
    click.echo("launching: " + " ".join(cmd), err=True)
    sys.exit(subprocess.call(cmd))


def _version() -> str:
    from . import __version__

    return __version__


__all__ = ["train", "build_run", "run_train", "load_data"]
