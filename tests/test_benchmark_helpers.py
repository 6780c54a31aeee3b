"""The benchmark scripts' shared parts that decide what their JSON says: sharded checkpoints are
read whole, and a side that ran out of memory is reported as such (the other side still runs)."""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _common import PeakRSS, failure  # noqa: E402
from vs_trl import load_weights  # noqa: E402


def test_load_weights_reads_every_shard_of_a_sharded_checkpoint(tmp_path):
    a, b = torch.randn(4, 3), torch.randn(2, 5)
    save_file({"x.q_proj.weight": a}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({"y.k_proj.weight": b}, str(tmp_path / "model-00002-of-00002.safetensors"))
    index = {"weight_map": {"x.q_proj.weight": "model-00001-of-00002.safetensors",
                            "y.k_proj.weight": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    got = load_weights(str(tmp_path), "cpu")
    assert set(got) == {"x.q_proj.weight", "y.k_proj.weight"}
    assert torch.equal(got["x.q_proj.weight"], a) and torch.equal(got["y.k_proj.weight"], b)


def test_a_case_killed_or_out_of_memory_is_reported_as_out_of_memory():
    killed = failure(-9, "")  # the kernel's OOM killer leaves no message
    assert killed["out_of_memory"] and killed["returncode"] == -9 and "no message" in killed["error"][0]
    cuda = failure(1, "Traceback ...\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
    assert cuda["out_of_memory"] and "CUDA out of memory" in cuda["error"][0]
    other = failure(1, "Traceback ...\nValueError: bad window")
    assert not other["out_of_memory"] and other["error"] == ["ValueError: bad window"]


def test_peak_memory_reports_gpu_peaks_only_on_a_gpu():
    with PeakRSS() as mem:
        x = torch.ones(1 << 20)
    assert mem.peak >= mem.start > 0 and x.sum() > 0
    assert (mem.gpu() == {}) == (not torch.cuda.is_available())


def test_balanced_recall_file_gives_every_step_each_value_equally(tmp_path):
    """recall_rl.py --balanced: under `pte train --seed S` (PromptSampler's order) each step's
    prompts ask for 3 and 8 equally often, and every prompt still names its own answer."""
    from recall_rl import balance

    from pte_cli.datasets import recall
    from pte_rl.sampler import PromptSampler

    path = tmp_path / "train.jsonl"
    rows = recall(200, seed=0, digits=1, values="38", ask="sentence")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    balance(str(path), seed=2, per_step=8, values="38")
    out = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(out) == 200 and all(r["prompt"].startswith(f"Remember this number: {r['answer']}. ") for r in out)
    steps = PromptSampler(out, 8, 2)
    assert all(sum(r["answer"] == "3" for r in steps.for_step(k)) == 4 for k in range(25))
    unbalanced = PromptSampler(rows, 8, 2)  # the file as written: some step is lopsided
    assert any(sum(r["answer"] == "3" for r in unbalanced.for_step(k)) != 4 for k in range(25))


def test_recall_table_scores_a_full_cache_run_under_the_bounded_cache_of_the_others(tmp_path):
    """recall_table.py: every run is scored under the bounded runs' setting; a run trained with the
    full cache (recall_rl.py --methods LoRA) is held only to the rows and token limit, and a bounded
    run with another cache, or any run with other rows or token limit, is refused by name."""
    import pytest
    from recall_rl import cache_args
    from recall_table import scoring_setting

    assert cache_args("LoRA", 16, True) == ["--eviction", "full"]
    assert cache_args("PTE", 16, True)[:4] == ["--eviction", "streaming-llm", "--cache-window", "16"]
    rows, other_rows = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    rows.write_text('{"id": 1}\n')
    other_rows.write_text('{"id": 2}\n')
    bounded = {"heldout": str(rows), "eviction": "streaming-llm", "options": {"cache_window": 16}, "max_new_tokens": 8,
               "trained_full": False}
    full = {**bounded, "eviction": "full", "options": {}, "trained_full": True}
    assert scoring_setting({("LoRA", 0): full, ("PTE", 0): bounded, ("PTE", 1): dict(bounded)}) is bounded
    for odd in ({**bounded, "options": {"cache_window": 40}}, {**bounded, "heldout": str(other_rows)},
                {**full, "max_new_tokens": 12}, {**full, "heldout": str(other_rows)}):
        with pytest.raises(SystemExit, match=r"LoRA_c-s2"):
            scoring_setting({("PTE", 0): bounded, ("LoRA_c", 2): odd})
    with pytest.raises(SystemExit, match="every run trained with the full cache"):
        scoring_setting({("LoRA", 0): full})
