"""Registry contract: built-ins via entry points, duplicates, unknown names, options."""

import types
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from pte_cache import hookimpl
from pte_cli.cli import cli
from pte_cli.registry import Registry, RegistryError, UnknownPluginError, get_registry

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

BUILTINS = {
    "eviction": {"lru-prompt-keep", "sliding-window", "streaming-llm", "full"},
    "encoder": {"progressive", "none", "global-only"},
    "reward": {"math", "exact", "format"},
    "backend": {"hf"},
}


def test_builtins_come_from_their_distributions_entry_points():
    reg = get_registry()
    for kind, names in BUILTINS.items():
        assert names <= set(reg.names(kind)), kind
    providers = {(e.kind, e.name): e.provider for kind in BUILTINS for e in reg.entries[kind].values()}
    assert providers[("eviction", "full")] == "pte-cache"
    assert providers[("encoder", "progressive")] == "pte-thought"
    assert providers[("reward", "math")] == "pte-rl"
    assert providers[("backend", "hf")] == "pte-rl"
    assert get_registry() is reg  # loaded once per process


def test_unknown_name_suggests_and_lists():
    with pytest.raises(UnknownPluginError) as err:
        get_registry().get("eviction", "lru-promt-keep")
    msg = str(err.value)
    assert "Unknown eviction policy 'lru-promt-keep'. Did you mean 'lru-prompt-keep'?" in msg
    available = msg.split("Available: ")[1].split(" (providers")[0].split(", ")
    assert BUILTINS["eviction"] <= set(available) and available == sorted(available)
    assert "pte-cache 0.1.0" in msg


def _plugin(name, kind_hook="pte_register_rewards", reward_name="dup"):
    mod = types.ModuleType(name)

    def impl(register):
        register(reward_name, lambda config=None: None, help="x")

    impl.__name__ = kind_hook
    setattr(mod, kind_hook, hookimpl(impl))
    return mod


def test_duplicate_name_names_both_providers():
    reg = Registry()
    reg.add_plugin(_plugin("one"), provider="dist-one", version="1.0")
    with pytest.raises(RegistryError, match="duplicate reward name 'dup': provided by both dist-one 1.0 and dist-two 2.0"):
        reg.add_plugin(_plugin("two"), provider="dist-two", version="2.0")


def test_bad_names_and_misspelled_hooks_rejected():
    reg = Registry()
    with pytest.raises(RegistryError, match="kebab-case"):
        reg.add_plugin(_plugin("bad", reward_name="Bad_Name"), provider="p")
    from pluggy import PluginValidationError

    with pytest.raises(PluginValidationError):
        reg.add_plugin(_plugin("typo", kind_hook="pte_register_reward"), provider="q")


def test_temporary_plugin_registers_and_unregisters():
    reg = get_registry()
    plugin = _plugin("temp", reward_name="temp-reward")
    reg.add_plugin(plugin, provider="temp-dist")
    try:
        assert "temp-reward" in reg.names("reward")
    finally:
        reg.remove_plugin(plugin)
    assert "temp-reward" not in reg.names("reward")


def test_options_validated_before_anything_loads():
    entry = get_registry().get("eviction", "lru-prompt-keep")
    assert entry.validate({"cache_window": 96}).cache_window == 96
    with pytest.raises(RegistryError, match="evict_ratio"):
        entry.validate({"evict_ratio": 0})
    with pytest.raises(RegistryError, match="(?i)cache_windw: extra inputs"):
        entry.validate({"cache_windw": 96})


class Opt(BaseModel):
    k: int = 1


def test_cli_names_exit_2_without_traceback():
    runner = CliRunner()
    res = runner.invoke(cli, ["train", "--eviction", "lru-promt-keep", "--dry-run"])
    assert res.exit_code == 2
    assert "Did you mean 'lru-prompt-keep'?" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["train", "--reward", "math:heavy", "--dry-run"])
    assert res.exit_code == 2 and "not a number" in res.output
    res = runner.invoke(cli, ["train", "--evict-ratio", "1.5", "--dry-run"])
    assert res.exit_code == 2 and "evict_ratio" in res.output
    res = runner.invoke(cli, ["generate", "-o", "eviction.nope=1", "--prompt", "x"])
    assert res.exit_code == 2 and "nope" in res.output


def test_fp16_training_is_refused_and_auto_never_picks_it(monkeypatch):
    """An fp16 base without loss scaling underflows the adapter's gradients: refused with the
    reason before anything loads; --dtype auto on a GPU without bf16 takes fp32, not fp16."""
    import torch

    from pte_rl.backends import pick_dtype

    for flag in ("--dtype", "--amp-dtype"):
        res = CliRunner().invoke(cli, ["train", flag, "float16", "--dry-run"])
        assert res.exit_code == 2 and "loss scaling" in res.output and "--dtype bfloat16" in res.output
        assert "Traceback" not in res.output
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert pick_dtype("auto", torch.device("cuda")) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert pick_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert pick_dtype("float16", torch.device("cpu")) == torch.float16  # eval/generate may use it


def test_plugins_json_lists_every_kind():
    import json

    res = CliRunner().invoke(cli, ["plugins", "--json"])
    assert res.exit_code == 0
    rows = json.loads(res.output)
    got = {(r["kind"], r["name"]) for r in rows}
    assert {(k, n) for k, names in BUILTINS.items() for n in names} <= got
    assert all({"kind", "name", "provider", "version", "help"} <= set(r) for r in rows)


def test_train_dry_run_resolves_defaults():
    import json

    res = CliRunner().invoke(cli, ["train", "--dry-run"])
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.stdout)
    from pte_cli.datasets import BUILTIN_CACHE_WINDOW

    # the built-in data gets a window its worked answers outgrow, not the prompt-long dynamic one
    assert cfg["eviction"]["name"] == "lru-prompt-keep"
    assert cfg["eviction"]["options"] == {"cache_window": BUILTIN_CACHE_WINDOW, "evict_ratio": 0.25, "dynamic_window": False}
    assert cfg["encoder"]["name"] == "progressive"
    assert [(r["name"], r["weight"]) for r in cfg["rewards"]] == [("math", 1.0)]
    assert cfg["train"]["group_size"] == 8 and cfg["num_problems"] == 256 and cfg["num_eval_problems"] == 128
    from pte_rl.trainer import TrainConfig

    assert cfg["train"] == TrainConfig().model_dump()  # the CLI's defaults are the trainer's defaults
    res = CliRunner().invoke(cli, ["train", "--dry-run", "--cache-window", "96", "--reward", "math",
                                   "--reward", "format:0.1"])
    cfg = json.loads(res.stdout)
    assert cfg["eviction"]["options"] == {"cache_window": 96, "evict_ratio": 0.25, "dynamic_window": False}
    # a user's data with no window: the paper's dynamic window (the built-in budget would not fit its prompts)
    res = CliRunner().invoke(cli, ["train", "--dry-run", "--data", str(EXAMPLES / "arithmetic.jsonl")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["eviction"]["options"]["dynamic_window"] is True
    res = CliRunner().invoke(cli, ["train", "--dry-run", "--dynamic-window"])  # asked for: kept, built-in data or not
    assert json.loads(res.stdout)["eviction"]["options"]["dynamic_window"] is True
    assert (cfg["rewards"][1]["name"], cfg["rewards"][1]["weight"]) == ("format", 0.1)
