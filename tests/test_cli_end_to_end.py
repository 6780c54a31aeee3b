"""The pte CLI as a user runs it (subprocesses)."""

import json
import os
import signal
import subprocess
import sys
import time

import torch
from pte_run import run_pte
from safetensors.torch import load_file


def test_version_help_and_unknown_name():
    assert "pte, version 0.1.0" in run_pte("--version").stdout
    assert "--eviction" in run_pte("train", "--help").stdout
    res = run_pte("train", "--eviction", "lru-promt-keep", check=False)
    assert res.returncode == 2
    assert "Did you mean 'lru-prompt-keep'?" in res.stderr and "Traceback" not in res.stderr


def test_third_party_plugin_discovered_through_entry_points():
    rows = json.loads(run_pte("plugins", "--json").stdout)
    demo = {(r["kind"], r["name"]): r for r in rows if r["provider"] == "pte-demo-plugin"}
    assert set(demo) == {("eviction", "demo-keep-last"), ("reward", "demo-short"), ("reward", "demo-fail-on-rank"),
                         ("backend", "demo-eos-on-rank")}
    assert demo[("eviction", "demo-keep-last")]["version"] == "0.3.1"
    assert "pte-demo-plugin 0.3.1" in run_pte("plugins").stdout
    cfg = json.loads(run_pte("train", "--eviction", "demo-keep-last", "--reward", "demo-short",
                             "-o", "eviction.cache_window=80", "--dry-run").stdout)
    assert cfg["eviction"] == {"name": "demo-keep-last", "options": {"cache_window": 80}}
    res = run_pte("train", "--eviction", "demo-keep-last", "-o", "eviction.cache_window=1", "--dry-run", check=False)
    assert res.returncode == 2 and "cache_window" in res.stderr


def test_generate_json_on_default_model():
    res = run_pte("generate", "--prompt", "What is 12 + 7?", "--prompt", "Name a color.", "--max-new-tokens", "8",
                  "--json")
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(rows) == 2
    assert rows[0]["completion"].startswith("12 + 7 = 9")
    for r in rows:
        assert {"prompt", "completion", "num_new_tokens", "num_evictions", "max_cache_tokens",
                "num_state_updates"} <= set(r)


def test_generate_with_demo_eviction_policy_on_tiny_model(tiny_model_dir):
    res = run_pte("generate", "--model", str(tiny_model_dir), "--eviction", "demo-keep-last",
                  "-o", "eviction.cache_window=60", "--prompt", "hello", "--max-new-tokens", "60",
                  "--min-new-tokens", "60", "--json")
    row = json.loads(res.stdout)
    assert row["num_evictions"] >= 1 and row["max_cache_tokens"] <= 60


def test_missing_model_errors_cleanly(tmp_path):
    res = run_pte("generate", "--model", str(tmp_path / "nope"), "--prompt", "x", check=False)
    assert res.returncode == 2 and "not found" in res.stderr and "Traceback" not in res.stderr
    res = run_pte("generate", "--model", str(tmp_path), "--prompt", "x", check=False)
    assert res.returncode == 2 and "no config.json" in res.stderr


def _spread_reward(folder):
    """A reward with spread in every group on a random model (the character length of the
    completion, scaled), so no step is skipped and every step moves the adapter and encoder."""
    path = folder / "spread.py"
    if not path.exists():
        path.write_text("def spread(completions, answers, **columns):\n"
                        "    return [len(c) / 100.0 for c in completions]\n")
    return f"{path}:spread"


def _spread_args(model_dir, out, steps, folder, *extra):
    """``_train_args`` with the spread reward (and no math-reward options)."""
    args = [a for a in _train_args(model_dir, out, steps) if a not in ("-o", "reward.workers=0")]
    return [*args, "--reward", _spread_reward(folder), *extra]


def _no_step_skipped(run, steps):
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    trained = [x for x in lines if "skipped_step" in x]
    assert len(trained) == steps and all(x["skipped_step"] == 0 and x["grad_norm"] > 0 for x in trained), trained


def _train_args(model_dir, out, steps, *extra):
    return ["train", "--model", str(model_dir), "--output-dir", str(out), "--max-steps", str(steps),
            "--prompts-per-step", "2", "--group-size", "2", "--max-new-tokens", "24", "--no-tensorboard",
            "--learning-rate", "1e-2", "-o", "reward.workers=0", *extra]


def test_train_tiny_model_then_generate_with_adapter(tiny_model_dir, tmp_path):
    res = run_pte(*_train_args(tiny_model_dir, tmp_path / "run", 2))
    assert "pte train: steps 0->2" in res.stdout and "held-out accuracy" in res.stdout
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # step 0: the built-in held-out set before training; the last step carries the eval after it
    assert [x["step"] for x in lines] == [0, 1, 2] and "reward" in lines[1]
    assert lines[0]["eval/n"] == lines[0]["eval_full/n"] == 128
    assert "eval/accuracy" in lines[2] and "eval/accuracy" not in lines[1]
    for prefix, where in (("eval/", "training cache"), ("eval_full/", "full cache")):
        before, after = lines[0][prefix + "accuracy"], lines[2][prefix + "accuracy"]
        assert f"{before:.3f} -> {after:.3f} [" in res.stdout and f"] under the {where}" in res.stdout
    assert "eviction events, " in res.stdout and " tokens per event" in res.stdout
    adapter = tmp_path / "run" / "checkpoints" / "step-000002" / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "thought_encoder.safetensors").is_file()
    res = run_pte("generate", "--model", str(tiny_model_dir), "--adapter", str(adapter), "--prompt", "hi",
                  "--max-new-tokens", "5", "--min-new-tokens", "5", "--json")
    assert json.loads(res.stdout)["num_new_tokens"] == 5
    res = run_pte("generate", "--model", str(tiny_model_dir), "--adapter", str(adapter), "--encoder", "none",
                  "--prompt", "hi", check=False)
    assert res.returncode == 2 and "conflicts with the adapter" in res.stderr


def test_export_merge_equals_adapter_and_refuses_a_thought_state(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    from pte_lora import AdapterManifest, load_adapter, save_adapter
    from pte_rl import PTEModel
    from pte_thought import IdentityConfig, IdentityEncoder

    run_pte(*_train_args(tiny_model_dir, tmp_path / "lora", 1, "--encoder", "none", "--eviction", "full"))
    trained = tmp_path / "lora" / "checkpoints" / "step-000001" / "adapter"
    assert (trained / "adapter_config.json").is_file()  # a plain LoRA: PEFT-loadable as it is
    # one step on a random model may be all-flat (it then trains on the KL term alone and barely
    # moves): give the adapter weights that matter
    pte = PTEModel(AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), IdentityEncoder(IdentityConfig()))
    load_adapter(trained, pte.lora, pte.encoder)
    torch.manual_seed(3)
    for p in pte.lora.parameters():
        p.data.normal_(0, 0.05)
    adapter = tmp_path / "adapter"
    save_adapter(adapter, pte.lora, AdapterManifest(pte_version="0.1.0", base_model=str(tiny_model_dir),
                                                    lora=pte.lora.config, encoder="none"), pte.encoder)
    res = run_pte("export", str(adapter), "--merge", "--output", str(tmp_path / "merged"))
    assert "merged into" in res.stdout
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.randint(0, 1000, (2, 16))
    with torch.no_grad():
        want, got, plain = pte.model(ids).logits, merged(ids).logits, base(ids).logits
    assert torch.allclose(got, want, atol=1e-5, rtol=0), (got - want).abs().max()
    assert not torch.allclose(plain, want, atol=1e-3)  # the adapter really changes outputs
    # a thought-state adapter has no fixed weight to merge: refused with the reason, nothing written
    run_pte(*_train_args(tiny_model_dir, tmp_path / "pte", 1))
    res = run_pte("export", str(tmp_path / "pte" / "checkpoints" / "step-000001" / "adapter"), "--merge",
                  "--output", str(tmp_path / "m2"), "--model", str(tiny_model_dir), check=False)
    assert res.returncode == 2 and "carries a thought state" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "m2").exists()
    res = run_pte("export", str(adapter), "--merge", "--output", str(tmp_path / "merged"), check=False)
    assert res.returncode == 2 and "not empty" in res.stderr


def test_export_base_writes_a_folder_transformers_loads_unchanged(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "base"
    res = run_pte("export", "--base", "--model", str(tiny_model_dir), "--output", str(out))
    assert "base model" in res.stdout and (out / "model.safetensors").is_file()
    assert oct((out).stat().st_mode & 0o777) != oct(0o700)  # an ordinary folder, not mkdtemp's 0700
    ids = torch.randint(0, 1000, (2, 12))
    with torch.no_grad():
        want = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()(ids).logits
        got = AutoModelForCausalLM.from_pretrained(out).eval()(ids).logits
    assert torch.equal(got, want)
    assert AutoTokenizer.from_pretrained(out).chat_template == AutoTokenizer.from_pretrained(tiny_model_dir).chat_template
    res = run_pte("export", "--base", "--model", str(tiny_model_dir), "--output", str(out), check=False)
    assert res.returncode == 2 and "not empty" in res.stderr  # never overwrites
    res = run_pte("export", "--output", str(tmp_path / "x"), check=False)
    assert res.returncode == 2 and "--base" in res.stderr and not (tmp_path / "x").exists()


def test_adapter_remembers_its_system_prompt(tiny_model_dir, tmp_path):
    run_pte(*_train_args(tiny_model_dir, tmp_path / "run", 1, "--system", "You are terse."))
    adapter = tmp_path / "run" / "checkpoints" / "step-000001" / "adapter"
    manifest = json.loads((adapter / "pte_config.json").read_text())
    assert manifest["system"] == "You are terse." and len(manifest["chat_template_sha256"]) == 64
    gen = ["generate", "--model", str(tiny_model_dir), "--adapter", str(adapter), "--prompt", "hi",
           "--max-new-tokens", "12", "--min-new-tokens", "12", "--json"]
    implicit = run_pte(*gen)
    assert "using the system prompt the adapter was trained with: 'You are terse.'" in implicit.stderr
    explicit = run_pte(*gen, "--system", "You are terse.")
    assert "warning: --system" not in explicit.stderr and "chat template" not in explicit.stderr
    # 12 tokens never fill the default 256-token cache: said once, with the numbers
    assert explicit.stderr.count("warning: the cache never filled: the thought state never updated "
                                 "(window 256 tokens, prompt included; longest row ") == 1, explicit.stderr
    tokens = json.loads(implicit.stdout)["prompt_tokens"]
    assert json.loads(explicit.stdout)["prompt_tokens"] == tokens  # the same prompt as in training
    other = run_pte(*gen, "--system", "You are a pirate who answers in long rhymes.")
    assert other.stderr.count("warning: --system 'You are a pirate who answers in long rhymes.' differs") == 1
    assert json.loads(other.stdout)["prompt_tokens"] > tokens


def test_train_with_a_reward_function_from_a_file(tiny_model_dir, tmp_path):
    rewards = tmp_path / "short.py"
    rewards.write_text("def short(completions, answers, **columns):  # the first row of a batch fails\n"
                       "    return [float('nan')] + [1.0 if len(c) < 40 else 0.0 for c in completions[1:]]\n")
    spec = f"{rewards}:short"
    args = [a for a in _train_args(tiny_model_dir, tmp_path / "run", 2) if a not in ("-o", "reward.workers=0")]
    res = run_pte(*args, "--reward", spec, "--reward", "math:0.5", "-o", "reward.workers=0")
    assert "pte train: steps 0->2" in res.stdout
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(f"reward/{spec}/mean" in x and "reward/math/mean" in x for x in lines[1:])
    assert all(x["reward_failures"] >= 1 for x in lines[1:])  # counted, and the run went on
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert {"name": spec, "options": {}, "weight": 1.0} in config["rewards"]


def test_config_json_repeats_the_run_bit_for_bit(tiny_model_dir, tmp_path):
    run_pte(*_spread_args(tiny_model_dir, tmp_path / "a", 2, tmp_path, "--seed", "3", "--temperature", "0.9"))
    run_pte("train", "--config", str(tmp_path / "a" / "config.json"), "--output-dir", str(tmp_path / "b"))
    _no_step_skipped(tmp_path / "a", 2)
    _same_adapters(tmp_path / "a", tmp_path / "b", 2)
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    assert cfg["train"]["seed"] == 3 and cfg["train"]["temperature"] == 0.9
    # what --dtype auto became is stated in the config and in every metrics line
    from pte_rl.backends import cpu_has_fast_bf16

    want = "bfloat16" if cpu_has_fast_bf16() else "float32"
    assert cfg["backend"]["options"]["dtype"] == "auto"
    assert cfg["resolved"]["dtype"] == want and cfg["resolved"]["adapter_dtype"] == "float32"
    assert cfg["resolved"]["dtype_reason"].startswith(f"auto: {want}")
    lines = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert all(x["dtype"] == want for x in lines if "reward" in x)


def test_train_and_eval_on_own_columns_and_chat_message_prompts(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    from pte_rl import chat_prompt

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 1 + 1?"}]
    assert chat_prompt(tok, messages) == chat_prompt(tok, "What is 1 + 1?", "Be brief.")
    assert chat_prompt(tok, messages, "Other.") == chat_prompt(tok, messages)  # its own system message wins
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in [
        {"q": messages, "a": "2"}, {"q": "What is 2 + 2?", "a": "4"}]))
    res = run_pte(*_train_args(tiny_model_dir, tmp_path / "run", 1, "--data", str(data), "--prompt-field", "q",
                               "--answer-field", "a"))
    assert "pte train: steps 0->1" in res.stdout
    res = run_pte("eval", "--model", str(tiny_model_dir), "--dataset", str(data), "--prompt-field", "q",
                  "--answer-field", "a", "--max-new-tokens", "4", "-o", "reward.workers=0")
    import re

    assert re.search(r"^d\s+\d+\.\d$", res.stdout, re.M), res.stdout  # a row for dataset d with its pass@1
    res = run_pte(*_train_args(tiny_model_dir, tmp_path / "r2", 1, "--data", str(data)), check=False)
    assert res.returncode == 2 and f"{data}:1: field 'prompt' missing" in res.stderr


def test_eval_data_every_n_steps(tiny_model_dir, tmp_path):
    held = tmp_path / "held.jsonl"
    held.write_text("".join(json.dumps({"prompt": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n"
                            for i in range(5)))
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"prompt": "What is 1 + 1?", "answer": "2"}) + "\n")
    res = run_pte(*_train_args(tiny_model_dir, tmp_path / "run", 3, "--data", str(data), "--eval-data", str(held),
                               "--eval-every", "2"))
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [x["step"] for x in lines if "eval/accuracy" in x]
    assert evals == [0, 2, 3] and all(x["eval/n"] == 5 for x in lines if "eval/n" in x)
    assert "held-out accuracy (greedy, n=5, 95% CI) " in res.stdout
    res = run_pte(*_train_args(tiny_model_dir, tmp_path / "r2", 1, "--data", str(data)))
    assert "held-out" not in res.stdout  # own data and no --eval-data: no eval, none invented


def test_resume_with_changed_group_size_is_refused(tiny_model_dir, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"prompt": "What is 1 + 1?", "answer": "2"}) + "\n")
    run_pte(*_train_args(tiny_model_dir, tmp_path / "run", 1, "--data", str(data)))
    args = _train_args(tiny_model_dir, tmp_path / "run", 2, "--data", str(data), "--resume")
    res = run_pte(*[("4" if a == "2" and args[i - 1] == "--group-size" else a) for i, a in enumerate(args)],
                  check=False)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "group_size: checkpoint has 2, this run has 4" in res.stderr
    assert not (tmp_path / "run" / "checkpoints" / "step-000002").exists()


def test_bad_training_data_refuses_to_start(tiny_model_dir, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "What is 1+1?", "answer": "2"}\n{"prompt": 5, "answer": "2"}\n')
    res = run_pte(*_train_args(tiny_model_dir, tmp_path / "r", 1, "--data", str(data)), check=False)
    assert res.returncode == 2 and f"{data}:2: field 'prompt'" in res.stderr
    assert not (tmp_path / "r").exists()
    long = tmp_path / "long.jsonl"
    long.write_text(json.dumps({"prompt": "word " * 300, "answer": "1"}) + "\n")
    res = run_pte(*_train_args(tiny_model_dir, tmp_path / "r2", 1, "--data", str(long), "--cache-window", "128"),
                  check=False)
    assert res.returncode == 2 and f"{long}:1: prompt of" in res.stderr
    res = run_pte("generate", "--model", str(tiny_model_dir), "--prompt", "word " * 300, "--cache-window", "128",
                  check=False)
    assert res.returncode == 2 and "prompt 'word word" in res.stderr and "does not fit" in res.stderr
    assert "Traceback" not in res.stderr


def test_torchrun_two_processes_gloo(tiny_model_dir, tmp_path):
    res = run_pte(*_spread_args(tiny_model_dir, tmp_path / "ddp", 2, tmp_path, "--nproc-per-node", "2",
                                "--eval-data", str(_heldout(tmp_path, 7))), timeout=900)
    assert "pte train: steps 0->2" in res.stdout
    lines = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [0, 1, 2]
    _no_step_skipped(tmp_path / "ddp", 2)
    # each rank scored a shard (4 and 3 rows), counts summed, under both caches
    assert lines[0]["eval/n"] == lines[2]["eval/n"] == lines[2]["eval_full/n"] == 7
    assert (tmp_path / "ddp" / "checkpoints" / "step-000002" / "adapter").is_dir()
    assert "global batch 2 prompts x 2 completions x 2 ranks = 8 completions per step" in res.stderr
    assert "--standalone" in res.stderr  # the launch line: one node


def test_two_nodes_meet_at_the_rendezvous_and_train_one_model(tiny_model_dir, tmp_path):
    """`--nnodes 2 --node-rank R --rdzv-endpoint` on each "node" (two launchers on this machine,
    sharing the output folder as nodes share storage) forms one 2-rank job."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = _spread_args(tiny_model_dir, tmp_path / "run", 2, tmp_path, "--nnodes", "2",
                        "--rdzv-endpoint", f"127.0.0.1:{port}", "--eval-data", str(_heldout(tmp_path, 4)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    nodes = [subprocess.Popen([sys.executable, "-m", "pte_cli", *args, "--node-rank", str(r)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    outs = [p.communicate(timeout=600) for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], outs
    assert "--nnodes=2" in outs[0][1] and "--rdzv-endpoint=127.0.0.1:" in outs[0][1]
    both = outs[0][1] + outs[1][1]
    assert "x 2 ranks = 8 completions per step" in both and "pte train: steps 0->2" in outs[0][0] + outs[1][0]
    _no_step_skipped(tmp_path / "run", 2)
    assert (tmp_path / "run" / "checkpoints" / "step-000002" / "adapter").is_dir()


def _heldout(folder, n):
    path = folder / f"held-{n}.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n"
                            for i in range(n)))
    return path


def test_reward_failing_on_one_rank_ends_the_job(tiny_model_dir, tmp_path):
    t0 = time.time()
    args = [a for a in _train_args(tiny_model_dir, tmp_path / "ddp", 2, "--nproc-per-node", "2")
            if a not in ("-o", "reward.workers=0")]
    res = run_pte(*args, "--reward", "demo-fail-on-rank", "-o", "reward.workers=0", check=False)
    # a user mistake under --nproc-per-node: one message from the launcher, no torchrun traceback
    assert res.returncode == 2 and "no selected reward (demo-fail-on-rank) has option 'workers'" in res.stderr
    assert "Traceback" not in res.stderr and "torch.distributed.run" not in res.stderr
    res = run_pte(*args, "--reward", "demo-fail-on-rank", timeout=300, check=False)
    assert res.returncode != 0
    assert "demo-fail-on-rank: this reward fails on rank 1" in res.stdout + res.stderr
    assert time.time() - t0 < 120  # no rank left waiting in a collective (60 s of it is start-up slack)
    assert not (tmp_path / "ddp" / "checkpoints").exists()


def test_ranks_decoding_very_different_lengths_finish(tiny_model_dir, tmp_path):
    """Rank 0 always decodes to --max-new-tokens, rank 1 stops at its first token: no rank waits."""
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "What is 1 + 1?", "answer": "2"}) + "\n")
    res = run_pte(*_train_args(tiny_model_dir, tmp_path / "ddp", 2, "--nproc-per-node", "2", "--backend",
                               "demo-eos-on-rank", "--data", str(data)), timeout=300)
    assert "pte train: steps 0->2" in res.stdout
    lines = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    # metrics are rank means (max for max_length): (24 + 1) / 2 and 24
    assert all(x["completions/max_length"] == 24 and x["completions/mean_length"] == 12.5 for x in lines)
    assert (tmp_path / "ddp" / "checkpoints" / "step-000002" / "adapter").is_dir()


def test_two_rank_run_killed_and_resumed_equals_straight_run(tiny_model_dir, tmp_path):
    run_pte(*_spread_args(tiny_model_dir, tmp_path / "straight", 3, tmp_path, "--nproc-per-node", "2"), timeout=600)
    _no_step_skipped(tmp_path / "straight", 3)
    killed = tmp_path / "killed"
    args = _spread_args(tiny_model_dir, killed, 3, tmp_path, "--save-every", "1", "--nproc-per-node", "2")
    proc = subprocess.Popen([sys.executable, "-m", "pte_cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            start_new_session=True)
    ckpt = killed / "checkpoints" / "step-000001"
    deadline = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both ranks at once
    proc.wait()
    assert ckpt.exists()
    assert not (killed / "checkpoints" / "step-000003").exists(), "finished before the kill; proves nothing"
    res = run_pte(*_spread_args(tiny_model_dir, killed, 3, tmp_path, "--save-every", "1", "--nproc-per-node", "2",
                                "--resume"), timeout=600)
    assert "->3" in res.stdout
    _same_adapters(tmp_path / "straight", killed, 3)


def _adapter(run, step=4, name="adapter_model.safetensors"):
    return load_file(str(run / "checkpoints" / f"step-{step:06d}" / "adapter" / name))


def _same_adapters(a, b, step):
    """Both adapter files bit-identical, and both really trained (not their seeded start)."""
    for name in ("adapter_model.safetensors", "thought_encoder.safetensors"):
        x, y = _adapter(a, step, name), _adapter(b, step, name)
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), name
    lora = _adapter(a, step)
    assert any(k.endswith("lora_A.weight") and bool(v.abs().max() > 0) for k, v in lora.items())  # A starts at 0


def test_sigkill_then_resume_equals_straight_run(tiny_model_dir, tmp_path):
    run_pte(*_spread_args(tiny_model_dir, tmp_path / "straight", 4, tmp_path))
    _no_step_skipped(tmp_path / "straight", 4)
    killed = tmp_path / "killed"
    args = _spread_args(tiny_model_dir, killed, 4, tmp_path, "--save-every", "1")
    proc = subprocess.Popen([sys.executable, "-m", "pte_cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    ckpt = killed / "checkpoints" / "step-000002"
    deadline = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists()
    done = sorted(p.name for p in (killed / "checkpoints").iterdir() if p.name.startswith("step-"))
    assert "step-000004" not in done, "the run finished before it was killed; the test proves nothing"
    res = run_pte(*_spread_args(tiny_model_dir, killed, 4, tmp_path, "--save-every", "1", "--resume"))
    assert "pte train: steps" in res.stdout and "->4" in res.stdout
    _same_adapters(tmp_path / "straight", killed, 4)


def test_init_adapter_starts_where_the_other_run_ended(tiny_model_dir, tmp_path):
    held = str(_heldout(tmp_path, 8))
    run_pte(*_spread_args(tiny_model_dir, tmp_path / "a", 2, tmp_path, "--eval-data", held))
    _no_step_skipped(tmp_path / "a", 2)
    adapter = tmp_path / "a" / "checkpoints" / "step-000002" / "adapter"
    res = run_pte(*_spread_args(tiny_model_dir, tmp_path / "b", 1, tmp_path, "--eval-data", held,
                                "--init-adapter", str(adapter)))
    evals = lambda run: [{k: v for k, v in x.items() if k.startswith(("eval/", "eval_full/"))}  # noqa: E731
                         for x in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "eval/n" in x]
    a, b = evals(tmp_path / "a"), evals(tmp_path / "b")
    assert a[0] != a[-1]  # training moved what the eval sees, so the next line can tell the adapters apart
    assert b[0] == a[-1]
    assert "held-out accuracy" in res.stdout
    # mistakes are found before any model loads (--dry-run validates the run)
    for bad, says in (([str(adapter), "--encoder", "none"], ["was not made for this run", "encoder: the adapter "
                                                              "has 'progressive', this run 'none'"]),
                      ([str(adapter), "--lora-alpha", "3"], ["LoRA settings: the adapter has"]),
                      ([str(tmp_path)], ["not a pte adapter"]),
                      ([str(tmp_path / "nope")], ["does not exist"])):
        res = run_pte(*_spread_args(tiny_model_dir, tmp_path / "c", 1, tmp_path, "--dry-run", "--init-adapter", *bad),
                      check=False)
        assert res.returncode == 2 and "Traceback" not in res.stderr and all(x in res.stderr for x in says), res.stderr
