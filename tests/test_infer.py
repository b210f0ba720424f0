"""infer.py on the demo model train.py wrote: word-level entities with exact offsets, any input."""

import io
import json

import pytest

from bert_ner import Tagger
from bert_ner.inference import chunks, kept
from bert_ner.words import split_words
from infer import main
from tests.conftest import SENTENCE

# Names from the demo's training split, which the demo model tags reliably.
EXPECTED = [("PER", "Anna Schmidt", 0, 12), ("ORG", "Reuters", 34, 41), ("LOC", "Germany", 69, 76)]


def run_json(capsys, *args) -> list[dict]:
    assert main(["--json", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def found(record: dict) -> list[tuple]:
    return [(e["entity_group"], e["word"], e["start"], e["end"]) for e in record["entities"]]


def assert_exact(record: dict, model_dir) -> None:
    """Every entity is the input's own substring and covers whole words, as bert_ner.words splits them."""
    text = record["text"]
    word_spans = split_words(text)
    word_starts, word_ends = {start for start, _ in word_spans}, {end for _, end in word_spans}
    for entity in record["entities"]:
        start, end = entity["start"], entity["end"]
        assert text[start:end] == entity["word"] and entity["word"] == entity["word"].strip()
        assert start in word_starts and end in word_ends, f"{entity} is not whole words"


def test_demo_sentence(demo_run, capsys):
    (record,) = run_json(capsys, "--model", str(demo_run), SENTENCE)
    assert record["text"] == SENTENCE
    assert found(record) == EXPECTED
    assert all(list(e) == ["entity_group", "word", "start", "end", "score"] and 0 < e["score"] <= 1 for e in record["entities"])


def test_table_output(demo_run, capsys):
    assert main(["--model", str(demo_run), SENTENCE]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == SENTENCE
    assert out.splitlines()[1].split() == ["entity", "type", "score", "start", "end"]
    assert "Anna Schmidt  PER" in out and "Reuters" in out


@pytest.mark.parametrize(
    "text",
    [
        "   Anna   Schmidt said\ton Tuesday that  Reuters would open a new office in Germany .",  # spaces, tabs
        "“Anna Schmidt” said on Tuesday that Reuters would open a new office in Germany 😀 .",  # curly quotes, emoji
        "Anna Schmidt said on Tuesday that Reuters would open a new office in Zürich and 東京 .",  # accents, CJK
        "Sarah Connollyson said on Tuesday that Reutersberg Bank would open a new office in Germany .",  # many pieces
    ],
)
def test_offsets_are_exact_and_entities_are_whole_words(demo_run, capsys, text):
    (record,) = run_json(capsys, "--model", str(demo_run), text)
    assert record["entities"], "the demo model should find something here"
    assert_exact(record, demo_run)


def test_names_split_into_many_pieces_come_back_whole(demo_run, capsys):
    from transformers import AutoTokenizer

    text = "Sarah Connollyson said on Tuesday that Reutersberg Bank would open a new office in Germany ."
    tokenizer = AutoTokenizer.from_pretrained(demo_run)
    assert len(tokenizer.tokenize("Connollyson")) >= 4 and len(tokenizer.tokenize("Reutersberg")) >= 4
    (record,) = run_json(capsys, "--model", str(demo_run), text)
    assert found(record) == [("PER", "Sarah Connollyson", 0, 17), ("ORG", "Reutersberg Bank", 39, 55), ("LOC", "Germany", 83, 90)]


def test_json_round_trips(demo_run, capsys):
    texts = [SENTENCE, "", "Germany beat Brazil 3-0 in a friendly match ."]
    records = run_json(capsys, "--model", str(demo_run), *texts)
    assert [r["text"] for r in records] == texts
    assert records[1]["entities"] == []
    assert json.loads(json.dumps(records)) == records


class FakeStdin:
    def __init__(self, data: bytes):
        self.buffer = io.BytesIO(data)

    def isatty(self) -> bool:
        return False


def test_stdin_and_file_give_the_same_results_in_input_order(demo_run, capsys, monkeypatch, tmp_path):
    lines = [SENTENCE, "  ", "Germany beat Brazil 3-0 in a friendly match ."] * 3
    data = ("\r\n".join(lines) + "\r\n").encode()
    monkeypatch.setattr("sys.stdin", FakeStdin(data))
    from_stdin = run_json(capsys, "--model", str(demo_run))
    path = tmp_path / "texts.txt"
    path.write_bytes(b"\xef\xbb\xbf" + data)  # a BOM, as Windows editors write it
    from_file = run_json(capsys, "--model", str(demo_run), "--file", str(path))
    assert [r["text"] for r in from_stdin] == lines
    assert from_file == from_stdin
    assert found(from_file[0]) == EXPECTED


def test_entity_past_token_512_is_found_once(demo_run, capsys):
    """The demo model's window is 128 sub-tokens; a sentence of 3,000 words is read whole, with overlap."""
    from transformers import AutoTokenizer

    filler = "Prices fell sharply on Monday , " * 600
    text = filler + SENTENCE[: -len(" .")] + " , " + "Both sides said they hoped for peace , " * 20 + "."
    assert len(AutoTokenizer.from_pretrained(demo_run).tokenize(filler)) > 512 * 5
    (record,) = run_json(capsys, "--model", str(demo_run), text)
    assert_exact(record, demo_run)
    offset = len(filler)
    assert [(t, w, s - offset, e - offset) for t, w, s, e in found(record)] == EXPECTED


def test_entities_on_window_edges_are_neither_lost_nor_doubled(demo_run, capsys):
    text = " , ".join([SENTENCE[: -len(" .")]] * 40) + " ."  # one sentence, read in windows
    (record,) = run_json(capsys, "--model", str(demo_run), text)
    assert_exact(record, demo_run)
    people = [e for e in record["entities"] if e["word"] == "Anna Schmidt"]
    assert len(people) == 40
    assert len({e["start"] for e in record["entities"]}) == len(record["entities"])


def test_min_score_keeps_the_entities_scored_at_least_that(demo_run, capsys):
    (everything,) = run_json(capsys, "--model", str(demo_run), SENTENCE)
    scores = sorted(e["score"] for e in everything["entities"])
    assert len(scores) >= 2 and scores[0] < scores[-1]
    threshold = (scores[0] + scores[-1]) / 2
    (record,) = run_json(capsys, "--model", str(demo_run), "--min-score", str(threshold), SENTENCE)
    assert record["entities"] == [e for e in everything["entities"] if e["score"] >= threshold]


def test_min_score_is_a_probability(demo_run, capsys):
    with pytest.raises(SystemExit):
        main(["--model", str(demo_run), "--min-score", "1.5", SENTENCE])
    assert "--min-score 1.5: give a score from 0 to 1 (0 keeps every entity)" in capsys.readouterr().err


def test_blank_text_gives_no_entities(demo_run, capsys):
    assert run_json(capsys, "--model", str(demo_run), "   ") == [{"text": "   ", "entities": []}]


def error_of(capsys, *args) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_missing_model_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        error_of(capsys, "Barack Obama")
        == "error: no model in bert-ner/: run python train.py first (or make demo), or pass --model DIR\n"
    )
    (tmp_path / "empty").mkdir()
    assert "no model in empty/" in error_of(capsys, "--model", "empty", "x")


def test_bad_files(demo_run, tmp_path, capsys):
    model = ["--model", str(demo_run)]
    assert "--file 'nowhere.txt': cannot read it" in error_of(capsys, *model, "--file", "nowhere.txt")
    assert f"--file '{tmp_path}' is a directory" in error_of(capsys, *model, "--file", str(tmp_path))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(SENTENCE.encode() + b"\nM\xfcnchen\n")
    assert main([*model, "--json", "--file", str(bad)]) == 2
    captured = capsys.readouterr()
    assert f"{bad}:2: not UTF-8 (byte 0xfc)" in captured.err
    assert json.loads(captured.out.splitlines()[0])["text"] == SENTENCE  # what came before still came out


def test_no_input_at_a_terminal_says_how_to_give_some(demo_run, capsys, monkeypatch):
    class Terminal(FakeStdin):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdin", Terminal(b""))
    assert "nothing to tag" in error_of(capsys, "--model", str(demo_run))


def test_kept_entities_are_sorted_and_filtered_by_score():
    low = {"entity_group": "PER", "word": "Jürgen", "start": 9, "end": 15, "score": 0.5}
    high = {"entity_group": "ORG", "word": "UN", "start": 2, "end": 4, "score": 0.91}
    assert kept([low, high]) == [high, low]
    assert kept([low, high], min_score=0.9) == [high]


def test_chunks_yield_what_was_read_before_an_error():
    def items():
        yield from "abc"
        raise ValueError("bad line")

    got = []
    with pytest.raises(ValueError):
        for chunk in chunks(items(), 2):
            got.append(chunk)
    assert got == [["a", "b"], ["c"]]


def test_a_tagger_skips_blank_texts_and_answers_in_input_order(monkeypatch):
    from types import SimpleNamespace

    from bert_ner.inference import Reader
    from bert_ner.record import ModelRecord
    from bert_ner.tagger import Tagger

    prepared = []

    class Whole(Reader):  # tags every text as one entity spanning all of it
        def prepare(self, text):
            prepared.append(text)
            return text

        def finish(self, text, rows):
            return [{"entity_group": "X", "word": text, "start": 0, "end": len(text), "score": 1.0}]

    def no_model(prepared, *_):  # the model steps, with no model
        return [[] for _ in prepared]
        yield

    monkeypatch.setattr("bert_ner.inference.model_steps", no_model)
    tagger = Tagger(SimpleNamespace(reader=Whole(None, ["O"], 16, ModelRecord()), logits=None, call_cost=0))
    results = tagger.tag(["bb", "", "a", " \n", "dddd"], batch_size=2)
    assert prepared == ["bb", "a", "dddd"]
    assert [r[0]["word"] if r else "" for r in results] == ["bb", "", "a", "", "dddd"]


@pytest.mark.parametrize(
    "lengths, most, call_cost, calls",
    [
        ([], 4, 64, []),
        ([7], 4, 64, [[0]]),
        ([9, 9, 9], 4, 64, [[0, 1, 2]]),  # equal lengths share a call, in input order
        ([9, 9, 9, 9], 2, 64, [[0, 1], [2, 3]]),  # never more than `most` inputs
        ([5, 40, 6, 38], 4, 10, [[1, 3], [2, 0]]),  # short inputs are not padded to a long one's width...
        ([5, 40, 6, 38], 4, 100, [[1, 3, 2, 0]]),  # ...unless one more call costs more than that padding
        ([3, 2, 1], 4, 0, [[0], [1], [2]]),  # free calls: no padding at all
    ],
)
def test_model_calls(lengths, most, call_cost, calls):
    from bert_ner.inference import model_calls

    assert model_calls(lengths, most, call_cost) == calls


def test_on_a_gpu_calls_are_as_few_as_batch_size_allows():
    """call_cost None: ceil(inputs / batch_size) calls, whatever the lengths and batch size."""
    import random

    from bert_ner.inference import model_calls

    draw = random.Random(1)
    for count, batch_size in [(1, 32), (31, 32), (32, 32), (33, 32), (100, 32), (257, 32), (700, 256)]:
        lengths = [draw.choice([3, 12, 40, 512]) for _ in range(count)]
        assert len(model_calls(lengths, batch_size, None)) == -(-count // batch_size)
    assert model_calls([], 32, None) == []


def test_the_pipeline_takes_the_gpu_call_cost_on_a_gpu(demo_run, monkeypatch):
    import torch

    import bert_ner.inference

    class Stop(Exception):
        pass

    seen = []

    def spy(prepared, call, batch_size, call_cost=None):
        seen.append(call_cost)
        raise Stop

    tagger = Tagger.load(str(demo_run), device="cpu")
    monkeypatch.setattr(bert_ner.inference, "model_steps", spy)
    with pytest.raises(Stop):
        tagger(SENTENCE)
    monkeypatch.setattr(tagger.pipeline, "device", torch.device("cuda"))  # only read here: no model call is made
    with pytest.raises(Stop):
        tagger(SENTENCE)
    assert seen == [bert_ner.inference.CALL_COST, None]


def test_model_calls_are_the_cheapest_cut_of_the_sorted_inputs():
    """Against every cut of the inputs, longest first, into runs of at most `most`."""
    import random

    from bert_ner.inference import model_calls

    def cheapest(lengths: list[int], most: int, call_cost: int) -> int:  # lengths longest first
        if not lengths:
            return 0
        return min(
            call_cost + size * lengths[0] + cheapest(lengths[size:], most, call_cost)
            for size in range(1, min(most, len(lengths)) + 1)
        )

    draw = random.Random(0)
    for _ in range(300):
        lengths = [draw.randint(3, 60) for _ in range(draw.randint(1, 8))]
        most, call_cost = draw.randint(1, 5), draw.choice([0, 5, 40, 64, 500])
        calls = model_calls(lengths, most, call_cost)
        assert sorted(i for call in calls for i in call) == list(range(len(lengths)))
        assert all(len(call) <= most and lengths[call[0]] == max(lengths[i] for i in call) for call in calls)
        cost = sum(call_cost + len(call) * lengths[call[0]] for call in calls)
        assert cost == cheapest(sorted(lengths, reverse=True), most, call_cost), (lengths, most, call_cost)


# Texts of very different lengths, so that they share padded model calls of several widths.
MIXED_TEXTS = [
    SENTENCE,
    "Anna Schmidt .",
    f"{SENTENCE} {SENTENCE}\nReuters said so .",
    "Germany",
    " , ".join([SENTENCE[: -len(" .")]] * 30) + " .",  # one sentence too long for the demo model: windows
]


def assert_tagged_together_as_alone(tagger, texts: list[str]) -> None:
    """Inputs of different lengths share padded model calls, and no text's entities or scores change."""
    together = tagger.tag(texts, batch_size=2)
    for text, entities in zip(texts, together):
        (alone,) = tagger.tag([text], batch_size=1)
        assert [(e["entity_group"], e["start"], e["end"]) for e in entities] == [
            (e["entity_group"], e["start"], e["end"]) for e in alone
        ]
        assert [e["score"] for e in entities] == pytest.approx([e["score"] for e in alone], abs=1e-4)


def test_texts_tagged_together_get_what_each_gets_alone(demo_run):
    assert_tagged_together_as_alone(Tagger.load(str(demo_run)), MIXED_TEXTS)


def test_the_pipeline_tags_one_string_and_streams_a_generator(demo_run):
    ner = Tagger.load(str(demo_run)).pipeline
    assert [(e["entity_group"], e["word"]) for e in ner(SENTENCE)] == [(kind, word) for kind, word, _, _ in EXPECTED]
    read = []

    def texts():
        for text in MIXED_TEXTS:
            read.append(text)
            yield text

    first = next(iter(ner(texts(), batch_size=2)))
    assert len(read) == 2 and [e["word"] for e in first] == [word for _, word, _, _ in EXPECTED]


def test_inputs_of_different_lengths_need_an_attention_mask():
    import numpy as np

    from bert_ner.errors import UserError
    from bert_ner.inference import padded

    inputs = [{"input_ids": [2, 5, 6, 3]}, {"input_ids": [2, 7, 3]}]
    with pytest.raises(UserError, match="takes no attention_mask .* use --batch-size 1"):
        padded(inputs, ["input_ids"])
    arrays = padded([inputs[0], {"input_ids": [2, 9, 9, 3], "attention_mask": [1, 1, 1, 1]}], ["input_ids"])
    assert arrays["input_ids"].tolist() == [[2, 5, 6, 3], [2, 9, 9, 3]]
    with_mask = [{**ids, "attention_mask": [1] * len(ids["input_ids"])} for ids in inputs]
    arrays = padded(with_mask, ["input_ids", "attention_mask"])
    assert arrays["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]] and arrays["input_ids"].dtype == np.int64


def test_model_calls_run_under_inference_mode_and_threads_are_set(demo_run, monkeypatch):
    import torch

    seen = []
    monkeypatch.setattr(torch, "set_num_threads", seen.append)
    tagger = Tagger.load(str(demo_run))
    model = tagger.pipeline.model
    modes = []
    monkeypatch.setattr(model, "forward", lambda *a, **k: modes.append(torch.is_inference_mode_enabled()) or Stop())

    class Stop(Exception):
        logits = property(lambda self: (_ for _ in ()).throw(self))

    with pytest.raises(Stop):
        tagger(SENTENCE)
    assert modes == [True]
    Tagger.load(str(demo_run), threads=1)
    assert seen == [1]  # None keeps PyTorch's own default


def test_threads_option_reaches_pytorch(demo_run, capsys, monkeypatch):
    import torch

    seen = []
    monkeypatch.setattr(torch, "set_num_threads", seen.append)
    (record,) = run_json(capsys, "--model", str(demo_run), "--threads", "1", SENTENCE)
    assert seen == [1] and found(record) == EXPECTED


def test_documents_option_gives_one_record_per_line_in_order(demo_run, capsys, tmp_path):
    lines = [SENTENCE, "Both sides said they hoped for peace .", "", SENTENCE]
    (tmp_path / "news.txt").write_text("\n".join(lines) + "\n")
    assert main(["--json", "--model", str(demo_run), "--documents", "--file", str(tmp_path / "news.txt")]) == 0
    output = capsys.readouterr()
    records = [json.loads(line) for line in output.out.splitlines()]
    assert [r["text"] for r in records] == lines
    assert "trained without context (data.context_tokens 0), so --documents changes nothing" in output.err  # the demo's
    assert found(records[0]) == found(records[3]) == EXPECTED
    assert records[2]["entities"] == []


def test_a_model_without_train_config_still_works(demo_run, capsys, tmp_path):
    """A Hub model has no train_config.yaml: no context, the model's own limit, Viterbi."""
    import shutil

    model = tmp_path / "hub-like"
    shutil.copytree(demo_run, model, ignore=shutil.ignore_patterns("train_config.yaml"))
    (record,) = run_json(capsys, "--model", str(model), SENTENCE)
    assert found(record) == EXPECTED


def test_a_reader_that_stops_early_ends_infer_quietly(demo_run, tmp_path):
    """`infer.py ... | head -1`: no traceback when the pipe closes, the status a shell gives `cat`."""
    import subprocess
    import sys

    from bert_ner.errors import BROKEN_PIPE_EXIT

    texts = tmp_path / "texts.txt"
    texts.write_text(f"{SENTENCE}\n" * 3000)  # far more output than a pipe holds
    command = [sys.executable, "infer.py", "--model", str(demo_run), "--file", str(texts), "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()
    process.stdout.close()
    _, errors = process.communicate(timeout=300)
    assert json.loads(first)["entities"]
    assert process.returncode == BROKEN_PIPE_EXIT, errors.decode()
    assert errors.decode().strip() == ""


def test_a_broken_pipe_that_is_not_standard_output_is_an_error(capsys):
    """Only a closed stdout is a reader that stopped; another broken pipe (a socket) is a real error."""
    from bert_ner.errors import run_cli

    def body():
        raise BrokenPipeError("a worker's pipe")

    with pytest.raises(BrokenPipeError):
        run_cli(body, debug=False)


def test_output_left_in_the_buffer_for_a_reader_gone_is_dropped_quietly(demo_run, tmp_path):
    """Python buffers stdout on a pipe: what is printed last goes out at the end of run_cli, not at
    exit, where a closed pipe could only print a traceback (seen with PYTHONUNBUFFERED unset)."""
    import os
    import shutil
    import subprocess
    import sys

    from bert_ner.errors import BROKEN_PIPE_EXIT

    run = tmp_path / "run"
    shutil.copytree(demo_run, run)
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    process = subprocess.Popen(
        [sys.executable, "-m", "bert_ner.insights", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment
    )
    process.stdout.close()  # before it prints: its imports take far longer
    _, errors = process.communicate(timeout=300)
    assert (process.returncode, errors.decode().strip()) == (BROKEN_PIPE_EXIT, "")


def test_a_damaged_weights_file_is_a_one_line_error(demo_run, tmp_path, capsys):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(demo_run, model, ignore=shutil.ignore_patterns("checkpoint-*"))
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a copy that stopped early
    assert main(["--model", str(model), SENTENCE]) == 2
    error = capsys.readouterr().err
    assert f"--model: the weights in '{model}' cannot be read" in error and "Traceback" not in error


def test_the_saved_model_runs_in_transformers_pipelines(demo_run):
    """As the registered task "bert-ner", exactly as the Tagger; in the plain token-classification
    pipeline too, as the model card's fallback says."""
    from transformers import pipeline

    import bert_ner.torch_backend  # noqa: F401  registers the "bert-ner" task

    tagger = Tagger.load(str(demo_run), device="cpu")
    ours = pipeline("bert-ner", model=str(demo_run), device="cpu")
    assert ours(SENTENCE) == tagger.tag([SENTENCE])[0]
    assert ours(MIXED_TEXTS, batch_size=2) == tagger.tag(MIXED_TEXTS)
    assert ours(SENTENCE, min_score=0.99) == tagger.tag([SENTENCE], min_score=0.99)[0]
    plain = pipeline("token-classification", model=str(demo_run), aggregation_strategy="first", device="cpu")
    assert {(e["entity_group"], e["word"]) for e in plain(SENTENCE)} >= {("PER", "Anna Schmidt")}


def test_a_model_directory_copied_alone_tags_as_in_place(demo_run, tmp_path, monkeypatch):
    """The model needs nothing from the clone: not its config.yaml, not its working directory."""
    import shutil

    copy = tmp_path / "copied"
    shutil.copytree(demo_run, copy)
    expected = Tagger.load(str(demo_run)).tag(MIXED_TEXTS)
    monkeypatch.chdir(tmp_path)
    assert Tagger.load(str(copy)).tag(MIXED_TEXTS) == expected
    assert [[e.as_dict() for e in found] for found in Tagger.load("copied").pipe(MIXED_TEXTS)] == expected


def test_the_python_api_gives_infer_py_s_records_as_entities(demo_run, capsys):
    from bert_ner import Entity

    tagger = Tagger.load(str(demo_run))
    assert main(["--json", "--model", str(demo_run), *MIXED_TEXTS[:4]]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [[entity.as_dict() for entity in found] for found in tagger.pipe(MIXED_TEXTS[:4])] == [r["entities"] for r in records]
    assert [entity.as_dict() for entity in tagger(MIXED_TEXTS[0])] == records[0]["entities"]
    assert all(Entity.from_dict(e.as_dict()) == e for e in tagger(SENTENCE))
    assert [e.text for e in tagger(SENTENCE)] == [word for _, word, _, _ in EXPECTED]


def test_pipe_reads_documents_as_infer_py_documents_does(demo_run, capsys, tmp_path):
    lines = ["Anna Schmidt met Reuters .", "Germany said so .", "", "Reuters said so ."]
    (tmp_path / "lines.txt").write_text("\n".join(lines) + "\n")
    assert main(["--json", "--documents", "--model", str(demo_run), "--file", str(tmp_path / "lines.txt")]) == 0
    expected = [json.loads(line)["entities"] for line in capsys.readouterr().out.splitlines()]
    found = Tagger.load(str(demo_run)).pipe(iter(lines), documents=True)
    assert [[e.as_dict() for e in entities] for entities in found] == expected


@pytest.mark.parametrize(
    "options, message",
    [
        ({"backend": "tensorflow"}, "backend 'tensorflow' is not one of torch, onnx, onnx-int8"),
        ({"backend": "onnx", "device": "cuda"}, "the ONNX backends run on CPU"),
    ],
)
def test_tagger_load_refuses_what_it_cannot_do_in_one_line(demo_run, options, message):
    from bert_ner.errors import UserError

    with pytest.raises(UserError, match=message):
        Tagger.load(str(demo_run), **options)
