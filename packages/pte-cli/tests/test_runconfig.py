"""`pte train --config FILE`: file options, command-line precedence, misspelled keys (no model loads)."""

import json

from click.testing import CliRunner

from pte_cli.cli import cli


def _dry_run(*args):
    res = CliRunner().invoke(cli, ["train", *args, "--dry-run"])
    return res, (json.loads(res.stdout) if res.exit_code == 0 else None)


def test_yaml_options_and_command_line_precedence(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("max-steps: 5\ngroup_size: 6\nreward: [math, 'format:0.1']\neviction: streaming-llm\n"
                    "plugin_opt: {eviction.sink_tokens: 8}\nlearning_rate: 1.0e-4\n")
    res, cfg = _dry_run("--config", str(path), "--max-steps", "2")
    assert res.exit_code == 0, res.output
    assert cfg["train"]["max_steps"] == 2  # the command line wins
    assert cfg["train"]["group_size"] == 6 and cfg["train"]["learning_rate"] == 1e-4
    assert cfg["rewards"] == [{"name": "math", "weight": 1.0}, {"name": "format", "weight": 0.1}]
    assert cfg["eviction"] == "streaming-llm" and cfg["eviction_options"]["sink_tokens"] == 8
    # what config.json records loads back to the same resolved run
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps(cfg))
    res, again = _dry_run("--config", str(saved))
    assert res.exit_code == 0, res.output
    assert {k: v for k, v in again.items() if k != "args"} == {k: v for k, v in cfg.items() if k != "args"}


def test_misspelled_or_bad_keys_fail_before_anything_loads(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("max_stpes: 3\n")
    res, _ = _dry_run("--config", str(path))
    assert res.exit_code == 2 and "unknown key 'max_stpes' (did you mean 'max_steps'?)" in res.output
    assert "Traceback" not in res.output
    path.write_text("max_steps: [oops\n")
    res, _ = _dry_run("--config", str(path))
    assert res.exit_code == 2 and "not valid yaml" in res.output and "line 1" in res.output
    path.write_text("eviction: lru-promt-keep\n")
    res, _ = _dry_run("--config", str(path))
    assert res.exit_code == 2 and "Did you mean 'lru-prompt-keep'?" in res.output


def test_shipped_example_configs_validate_and_default_yaml_is_the_default_job():
    from pathlib import Path

    examples = Path(__file__).resolve().parents[3] / "examples"
    res, from_file = _dry_run("--config", str(examples / "default.yaml"))
    assert res.exit_code == 0, res.output
    _, default = _dry_run()
    assert {k: v for k, v in from_file.items() if k != "args"} == {k: v for k, v in default.items() if k != "args"}
    res, paper = _dry_run("--config", str(examples / "paper-gpu.yaml"))
    assert res.exit_code == 0, res.output
    assert paper["train"]["learning_rate"] == 1e-5 and paper["train"]["max_new_tokens"] == 3072
    assert paper["encoder_options"]["global_tokens"] == 32 and paper["lora"]["r"] == 32
