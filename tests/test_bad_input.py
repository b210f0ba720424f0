"""The bad-input matrix: every mistake a user can make with the config, the data files or infer.py's
input is answered with one line that names the input and what to do, exit status 2, and no
traceback; the inputs that are merely unusual just work."""

import json

import pytest

from bert_ner.data import TAGS, TOKENS, read_conll
from infer import main as infer
from tests.conftest import REPO, SCRATCH
from train import main as train

ONE_EPOCH = ["training.num_train_epochs=1", "data.max_eval_samples=16", "data.max_test_samples=16"]  # all 1,024 sentences


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    return errors[0]


# ---------------------------------------------------------------------------------------------
# Config


def test_yaml_syntax_error_names_the_line(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text("model:\n  scratch: {}\n   oops: 1\n")
    assert train(["--config", str(path)]) == 2
    assert one_error_line(capsys).startswith(f"error: {path}:3: invalid YAML")


@pytest.mark.parametrize(
    "override, expected",
    [
        ("modle.scratch=null", "modle: unknown section; did you mean 'model'?"),
        ("data.trian_file=x.txt", "data.trian_file: unknown key; did you mean 'train_file'?"),
        ("training.learning_rate=fast", "training.learning_rate: 'fast' is not a number"),
        ("training.num_train_epochs=-1", "training.num_train_epochs: -1.0 is too small; expected more than 0"),
        ("training.per_device_train_batch_size=0", "training.per_device_train_batch_size: 0 is too small"),
        ("training.evaluation_strategy=epoch", "training.evaluation_strategy: renamed to eval_strategy in transformers 5"),
        ("data.train_file=data/demo/nowhere.txt", "data.train_file: no such file 'data/demo/nowhere.txt'; check the path"),
        ("data.test_file=data/demo", "data.test_file: 'data/demo' is a directory; expected a file"),
    ],
)
def test_config_mistakes(tmp_path, capsys, override, expected):
    assert train(["--config", SCRATCH, override, f"training.output_dir={tmp_path}"]) == 2
    line = one_error_line(capsys)
    assert line.startswith("error: command line: ") and expected in line  # the value came from there, not from the file


# ---------------------------------------------------------------------------------------------
# Data files


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "no sentences found"),
        (b"Anna\nsang\n", ":1: one column ('Anna'); expected 'word tag'"),
        (b"Anna NNP B-PER\nsang O\n", ":2: 2 columns, but earlier lines have 3; use one layout per file"),
        (b"Anna PERSON\n", ":1: tag 'PERSON' is not IOB; expected O, B-TYPE or I-TYPE"),
        (b"Anna B-PER\nM\xfcller I-PER\n", ":2: not UTF-8 (byte 0xfc); re-save the file as UTF-8"),
    ],
)
def test_bad_data_files(tmp_path, capsys, content, expected):
    bad = tmp_path / "train.txt"
    bad.write_bytes(content)
    assert train(["--config", SCRATCH, f"data.train_file={bad}", f"training.output_dir={tmp_path / 'out'}"]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: {bad}") and expected in line


def messy(text: str) -> bytes:
    """The demo's training file as editors and other tools write it: a BOM, CRLF line endings, tabs
    between columns, trailing spaces, no final blank line, and an I- tag right after O (IOB1)."""
    lines = [line.replace(" ", "\t") + "  " if line else line for line in text.splitlines()]
    lines = [line.replace("B-", "I-", 1) if i % 7 == 0 else line for i, line in enumerate(lines)]
    return b"\xef\xbb\xbf" + "\r\n".join(lines).rstrip().encode()


def test_messy_but_valid_files_just_work(tmp_path):
    clean = REPO / "data/demo/train.txt"
    (tmp_path / "train.txt").write_bytes(messy(clean.read_text()))
    rows, expected = read_conll(tmp_path / "train.txt"), read_conll(clean)
    assert rows[TOKENS] == expected[TOKENS]
    assert rows[TAGS] != expected[TAGS]  # the I- tags are there until load_splits repairs them
    output_dir = tmp_path / "out"
    assert (
        train(["--config", SCRATCH, f"data.train_file={tmp_path / 'train.txt'}", *ONE_EPOCH, f"training.output_dir={output_dir}"])
        == 0
    )
    assert json.loads((output_dir / "metrics.json").read_text())["training"]["steps"] > 0


def test_sentence_longer_than_max_length_is_truncated_with_a_count_and_still_scored(tmp_path, caplog):
    long_sentence = "\n".join(f"w{i} O" if i % 10 else f"Oslo{i} B-LOC" for i in range(60))
    test_file = tmp_path / "test.txt"
    test_file.write_text((REPO / "data/demo/test.txt").read_text().split("\n\n")[0] + "\n\n" + long_sentence + "\n")
    caplog.set_level("WARNING", logger="bert_ner")
    output_dir = tmp_path / "out"
    args = [
        "--config",
        SCRATCH,
        f"data.test_file={test_file}",
        "data.max_length=32",
        *ONE_EPOCH,
        f"training.output_dir={output_dir}",
    ]
    assert train(args) == 0
    warning = next(message for message in caplog.messages if message.startswith("test: "))
    assert "words lie beyond max_length 32 and cannot be labelled; they count as O in scores" in warning
    lost = int(warning.split()[1])
    assert 0 < lost < 60
    predicted = [line for line in (output_dir / "test_predictions.txt").read_text().splitlines() if line]
    gold = read_conll(test_file)
    assert len(predicted) == sum(len(words) for words in gold[TOKENS])  # every word is in the scores
    assert all(line.endswith(" O") for line in predicted[-lost:])  # the cut-off words, predicted O
    support = json.loads((output_dir / "metrics.json").read_text())["test"]["per_type"]["LOC"]["support"]
    assert support == sum(tag == "B-LOC" for tags in gold[TAGS] for tag in tags)  # no entity dropped


# ---------------------------------------------------------------------------------------------
# infer.py input


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "?!... ,;: -- (( )) !!!",
        "Anna\x00Schmidt\x07 met\x1b[31m Oslo\x7f people\u200b in\u2028 Paris\x85 and\u2029 Rome",
        "Anna Schmidt visited Москва, then 東京 and القاهرة with Jürgen 😀.",
        ("Anna Schmidt visited Oslo . " * 3600)[:100_000],
    ],
    ids=["empty", "spaces", "punctuation", "control-characters", "mixed-scripts", "100k-characters"],
)
def test_unusual_texts_just_work(demo_run, capsys, text):
    assert infer(["--model", str(demo_run), "--json", text]) == 0
    out = capsys.readouterr().out.splitlines()  # as a Python reader splits them: at U+2028 and the like too
    (record,) = [json.loads(line) for line in out]
    assert record["text"] == text
    for entity in record["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["word"]
    if len(text) == 100_000:
        assert len(record["entities"]) > 3000  # found along the whole text, not just its first window


def test_directory_as_file_is_refused(demo_run, tmp_path, capsys):
    assert infer(["--model", str(demo_run), "--file", str(tmp_path)]) == 2
    assert one_error_line(capsys) == f"error: --file '{tmp_path}' is a directory; give a text file with one text per line"


# Python hands argv bytes that are not UTF-8 over as lone surrogates (surrogateescape): this is
# what `python infer.py "$(printf 'M\xfcller')"` gets.
@pytest.mark.parametrize(
    "texts, expected",
    [
        (["M\udcfcller"], "error: TEXT 1: not UTF-8 (byte 0xfc); set your terminal and shell to UTF-8"),
        (["Anna", "M\udcfcller sang"], "error: TEXT 2: not UTF-8 (byte 0xfc); set your terminal and shell to UTF-8"),
    ],
)
def test_text_argument_that_is_not_utf8_is_one_line(demo_run, capsys, texts, expected):
    assert infer(["--model", str(demo_run), *texts]) == 2
    assert one_error_line(capsys).startswith(expected)
    assert capsys.readouterr().out == ""  # refused before tagging anything


@pytest.mark.parametrize(
    "lines, page, said",
    [
        ([b"Anna Schmidt sang .", b"Anna sang ."], ["Anna Schmidt sang .", "Anna sang ."], "wrote {html}"),
        (
            [b"Anna Schmidt sang .", b"M\xfcnchen ."],
            ["Anna Schmidt sang ."],
            "wrote {html} with the 1 text tagged before stopping",
        ),
    ],
    ids=["all-good", "bad-second-line"],
)
def test_html_page_holds_what_was_tagged(demo_run, tmp_path, capsys, lines, page, said):
    source, html = tmp_path / "texts.txt", tmp_path / "page.html"
    source.write_bytes(b"\n".join(lines) + b"\n")
    status = infer(["--model", str(demo_run), "--json", "--file", str(source), "--html", str(html)])
    captured = capsys.readouterr()
    assert status == (0 if len(page) == len(lines) else 2)
    assert said.format(html=html) in captured.err.splitlines()
    assert [json.loads(line)["text"] for line in captured.out.splitlines()] == page
    written = html.read_text(encoding="utf-8")
    assert written.count('<p class="text">') == len(page) and "nchen" not in written
    if status:
        assert f"error: {source}:2: not UTF-8 (byte 0xfc)" in captured.err


def test_a_small_dataset_with_the_default_recipe_is_told_before_training(tmp_path, caplog):
    caplog.set_level("INFO", logger="bert_ner")
    args = ["--config", SCRATCH, "data.max_train_samples=30", "data.max_eval_samples=8", "data.max_test_samples=8"]
    assert train([*args, "training.num_train_epochs=1", f"training.output_dir={tmp_path / 'out'}"]) == 0
    messages = caplog.messages
    warning = next(i for i, message in enumerate(messages) if message.startswith("this run takes only 2 optimizer steps"))
    assert warning < messages.index("== train ==")
    assert "training.num_train_epochs=25 training.per_device_train_batch_size=8" in messages[warning]
