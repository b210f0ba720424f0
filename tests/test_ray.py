"""infer.py --ray on a local Ray with 2 CPUs and 2 workers: infer.py --json's records for text, JSON
lines and Parquet files, ids carried, bad lines reported, nothing lost when a worker dies."""

import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray

from bert_ner.outputs import BAD_LINES_FILE, RAY_MANIFEST, SHARD_PREFIX
from bert_ner.ray_batch import ERROR, FIELDS, LINE, TEXT, TagBatches, TagSettings, file_rows, tag_corpus
from infer import RAY_HINT, main
from tests.conftest import REPO, SENTENCE

TEXTS = [SENTENCE, "", "Germany beat Brazil 3-0 in a friendly match .", "Reuters said Anna Schmidt left Berlin ."]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    # Workers import bert_ner, and this module as pytest names it (test_ray, for DiesOnce), from this checkout.
    path = os.pathsep.join([str(REPO), str(REPO / "tests")])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def infer_json(capsys, model, path, *options) -> list[dict]:
    capsys.readouterr()  # what Ray printed before (a dead worker's retry), not infer.py's
    assert main(["--json", "--model", str(model), "--file", str(path), *options]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def ray_records(output) -> list[dict]:
    """The output's records, in input order (file, line)."""
    records = []
    for shard in sorted(output.glob(f"{SHARD_PREFIX}*")):
        if shard.suffix == ".parquet":
            records += pq.read_table(shard).to_pylist()
        else:
            records += [json.loads(line) for line in shard.read_text(encoding="utf-8").splitlines()]
    return sorted(records, key=lambda r: (r["file"], r["line"]))


def without_position(record: dict, *carried) -> dict:
    return {k: v for k, v in record.items() if k not in ("file", "line", *carried)}


@pytest.mark.parametrize(
    "name, data, expected",
    [
        ("a.txt", b"one\n\ntwo\r\n", [(1, "one", ""), (2, "", ""), (3, "two", "")]),
        ("a.txt", b"ok\n\xff bad\nok", [(1, "ok", ""), (2, "", "a.txt:2: not UTF-8"), (3, "ok", "")]),
        ("a.txt", b"one\rtwo\r", [(1, "one", ""), (2, "two", "")]),  # old-Mac line ends, as infer.py --file reads them
        ("a.txt", b"one\r\xff\rthree\n", [(1, "one", ""), (2, "", "a.txt:2: not UTF-8"), (3, "three", "")]),
        ("a.txt", "one\u2028still one\n".encode(), [(1, "one\u2028still one", "")]),  # infer.py's lines, not splitlines'
        (
            "a.jsonl",
            b'{"text": "t", "id": 7}\n\n{"id": 8}\n[1]\n{bad\n',
            [
                (1, "t", ""),
                (3, "", "a.jsonl:3: no field 'text'"),
                (4, "", "a.jsonl:4: a JSON list"),
                (5, "", "a.jsonl:5: not JSON"),
            ],
        ),
        ("a.jsonl", b'{"text": "t", "entities": []}\n', [(1, "", "a.jsonl:1: field 'entities' is one the output writes")]),
    ],
)
def test_file_rows(name, data, expected):
    rows = file_rows(name, data)
    assert [(r[LINE], r[TEXT], r[ERROR][: len(e)]) for r, (_, _, e) in zip(rows, expected)] == expected


def test_jsonl_fields_are_carried():
    (row,) = file_rows("a.jsonl", '{"id": 7, "text": "t", "meta": {"ü": [1]}}'.encode())
    assert json.loads(row[FIELDS]) == {"id": 7, "meta": {"ü": [1]}}


def test_text_files_give_infer_json_records(demo_run, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    (corpus / "b.txt").write_bytes("\n".join(reversed(TEXTS)).encode() + b"\n\xff not utf-8\nBerlin .\n")
    output = tmp_path / "tagged"
    assert main(["--ray", "--model", str(demo_run), "--file", str(corpus), "--output", str(output), "--workers", "2"]) == 0
    assert "1 bad lines skipped" in capsys.readouterr().err
    records = ray_records(output)
    expected = []
    for path in sorted(corpus.iterdir()):
        if path.name == "b.txt":  # infer.py stops at the bad line; the Ray path skips it and goes on
            good = path.read_bytes().replace(b"\xff not utf-8\n", b"")
            path = tmp_path / "b-good.txt"
            path.write_bytes(good)
        expected += infer_json(capsys, demo_run, path)
    assert [without_position(r) for r in records] == expected
    assert [(r["file"].rsplit("/", 1)[-1], r["line"]) for r in records][-2:] == [("b.txt", 4), ("b.txt", 6)]
    (bad,) = [json.loads(line) for line in (output / BAD_LINES_FILE).read_text().splitlines()]
    assert bad["line"] == 5 and bad["file"].endswith("b.txt") and "not UTF-8" in bad["error"]
    assert json.loads((output / RAY_MANIFEST).read_text())["records"] == len(records)


def test_json_lines_carry_ids_and_parquet_in_and_out(demo_run, tmp_path, capsys):
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    expected = infer_json(capsys, demo_run, source)
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps({"id": f"doc-{i}", "body": t}) + "\n" for i, t in enumerate(TEXTS)), encoding="utf-8")
    parquet = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": list(range(len(TEXTS))), "text": TEXTS}), parquet)
    options = ["--model", str(demo_run), "--workers", "2", "--output-format"]

    assert main(["--ray", "--file", str(jsonl), "--text-field", "body", "--output", str(tmp_path / "j"), *options, "jsonl"]) == 0
    records = ray_records(tmp_path / "j")
    assert [r["id"] for r in records] == [f"doc-{i}" for i in range(len(TEXTS))]
    assert [without_position(r, "id") for r in records] == expected

    assert main(["--ray", "--file", str(parquet), "--output", str(tmp_path / "p"), *options, "parquet"]) == 0
    records = ray_records(tmp_path / "p")
    assert [(r["id"], r["line"]) for r in records] == [(i, i + 1) for i in range(len(TEXTS))]
    assert [without_position(r, "id") for r in records] == expected


def test_documents_read_a_file_as_infer_documents_does(demo_run, tmp_path, capsys):
    source = tmp_path / "doc.txt"
    source.write_text("\n".join([*TEXTS, "", *TEXTS]) + "\n", encoding="utf-8")
    output = tmp_path / "tagged"
    assert main(["--ray", "--documents", "--model", str(demo_run), "--file", str(source), "--output", str(output)]) == 0
    assert [without_position(r) for r in ray_records(output)] == infer_json(capsys, demo_run, source, "--documents")


class DiesOnce(TagBatches):
    """A worker whose process dies on its first batch, once in the whole run (a marker file says so)."""

    def __call__(self, batch):
        marker = self.settings.load["model"] + ".died"
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return super().__call__(batch)


def test_a_worker_that_dies_loses_nothing(demo_run, tmp_path, capsys):
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(TEXTS * 50) + "\n", encoding="utf-8")
    model = tmp_path / "model"
    model.symlink_to(demo_run)  # its marker file goes beside it, in this test's directory
    settings = TagSettings({"model": str(model), "device": "cpu"})
    summary = tag_corpus(str(source), str(tmp_path / "tagged"), settings, workers=2, worker=DiesOnce)
    assert (tmp_path / "model.died").exists()
    records = ray_records(tmp_path / "tagged")
    assert summary.records == len(records) == len(TEXTS) * 50
    assert [without_position(r) for r in records] == infer_json(capsys, demo_run, source)


def test_output_appears_whole_and_is_replaced_only_when_ours(demo_run, tmp_path, capsys):
    source = tmp_path / "texts.txt"
    source.write_text(SENTENCE + "\n", encoding="utf-8")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    run = ["--ray", "--model", str(demo_run), "--file", str(source), "--output"]
    assert main([*run, str(theirs)]) == 2
    assert "is not what infer.py --ray wrote" in capsys.readouterr().err
    ours = tmp_path / "ours"
    assert main([*run, str(ours)]) == 0
    (ours / "stale-shard").write_text("from the run before")
    assert main([*run, str(ours)]) == 0
    assert not (ours / "stale-shard").exists() and len(ray_records(ours)) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no partial or previous left


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--workers", "2", "x"], "--workers is for --ray"),
        (["--ray", "--file", "x"], "give --file PATH_OR_GLOB and --output DIR"),
        (["--ray", "--file", "x", "--output", "o", "--format", "table"], "drop --format"),
        (["--ray", "--file", "x", "--output", "o", "--backend", "onnx-int8", "--gpus-per-worker", "1"], "runs the PyTorch"),
    ],
)
def test_ray_options_are_checked(argv, message, capsys):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2 and message in capsys.readouterr().err


def test_without_ray_installed_one_line_says_what_to_install(demo_run, tmp_path, monkeypatch, capsys):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a))
    assert main(["--ray", "--model", str(demo_run), "--file", "x", "--output", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == f"error: ray not installed: {RAY_HINT}\n"


def test_infer_imports_ray_only_for_ray():
    code = "import sys, infer; infer.parse_args(['x']); assert 'ray' not in sys.modules, 'ray imported'"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
