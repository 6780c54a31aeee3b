"""One loader for train, eval and score: JSONL, JSON, CSV, parquet, datasets folders, own column
names, chat-message prompts, and bad rows reported with where they are."""

import csv
import json

import pytest

from pte_rl.data import DataError, load_problems, read_rows

ROWS = [{"question": "What is 1 + 1?", "solution": "2", "level": 1},
        {"question": "What is 2 + 2?", "solution": "4", "level": 2}]
CHAT = [{"question": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 3 + 3?"}],
         "solution": "6", "level": 3}]


def _write(tmp_path, fmt, rows):
    path = tmp_path / f"data.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "json":
        path.write_text(json.dumps(rows))
    elif fmt == "csv":
        with open(path, "w", newline="") as handle:
            w = csv.DictWriter(handle, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    elif fmt == "datasets":
        from datasets import Dataset

        path = tmp_path / "saved"
        Dataset.from_list(rows).save_to_disk(str(path))
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet", "datasets"])
def test_every_format_with_own_columns_and_message_prompts(tmp_path, fmt):
    fields = {"prompt": "question", "answer": "solution"}
    problems, bad = load_problems(_write(tmp_path, fmt, ROWS), fields=fields)
    assert bad == [] and [p.answer for p in problems] == ["2", "4"]
    assert problems[0].prompt == "What is 1 + 1?" and problems[0].messages is None
    assert problems[1].extra["level"] == 2  # other columns reach the rewards
    (tmp_path / "chat").mkdir()
    chat, _ = load_problems(_write(tmp_path / "chat", fmt, CHAT), fields=fields)
    assert chat[0].messages == CHAT[0]["question"]  # chat messages kept as messages
    assert json.loads(chat[0].prompt) == CHAT[0]["question"] and chat[0].answer == "6"


def test_csv_rows_and_line_numbers(tmp_path):
    rows = [{"question": "What is 1 + 1?", "solution": "2"}, {"question": "", "solution": "3"}]
    path = _write(tmp_path, "csv", rows)
    with pytest.raises(DataError) as err:
        load_problems(path, fields={"prompt": "question", "answer": "solution"})
    assert f"{path}:3: field 'question' is empty" in str(err.value)  # line 3: the header is line 1
    problems, bad = load_problems(path, skip_bad_rows=True, fields={"prompt": "question", "answer": "solution"})
    assert len(problems) == 1 and problems[0].line == 2 and len(bad) == 1


def test_bad_rows_name_where_they_are(tmp_path):
    path = _write(tmp_path, "json", [{"prompt": "a", "answer": "1"}, {"prompt": "b"}, "not an object",
                                     {"prompt": [{"role": "user"}], "answer": "1"}])
    with pytest.raises(DataError) as err:
        read_rows(path, ("prompt", "answer"))
    msg = str(err.value)
    assert f"{path} row 1: field 'answer' missing or not a string" in msg
    assert f"{path} row 2: expected an object" in msg
    assert f"{path} row 3: field 'prompt' missing or not a string or chat messages" in msg
    (tmp_path / "x.json").write_text('{"prompt": "a"}')
    with pytest.raises(DataError, match="expected a JSON list of objects"):
        read_rows(tmp_path / "x.json", ("prompt",))
    with pytest.raises(DataError, match="not a datasets folder"):
        read_rows(tmp_path, ("prompt",))
