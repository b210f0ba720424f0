"""What infer.py finds is what train.py scored: the same words, the same decoding, the same F1."""

import json

import pytest

from bert_ner.data import TAGS, TOKENS, read_conll
from bert_ner.outputs import METRICS_FILE, PREDICTIONS_FILE
from bert_ner.scoring import score
from bert_ner.words import tags_for
from tests.conftest import REPO, SCRATCH
from train import main as train

DEMO_TEST = REPO / "data/demo/test.txt"
ZWSP = "\u200b"


def trained_test_f1(demo_run) -> float:
    return json.loads((demo_run / METRICS_FILE).read_text())["test"]["f1"]


def test_infer_on_the_demo_test_sentences_gives_train_py_s_test_f1(demo_run, tmp_path, capsys):
    from infer import main as infer

    rows = read_conll(DEMO_TEST)
    texts = [" ".join(words) for words in rows[TOKENS]]
    (tmp_path / "test.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    assert infer(["--model", str(demo_run), "--json", "--file", str(tmp_path / "test.txt")]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    predicted = []
    for words, record in zip(rows[TOKENS], records):
        starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
        predicted.append(tags_for([(s, s + len(w)) for s, w in zip(starts, words)], record["entities"]))
    assert score(rows[TAGS], predicted)["f1"] == trained_test_f1(demo_run)


def test_conlleval_reads_the_saved_test_predictions_as_train_py_scored_them(demo_run):
    """The original perl script's rules (the conlleval package) give train.py's span F1."""
    import conlleval

    lines = (demo_run / PREDICTIONS_FILE).read_text(encoding="utf-8").splitlines()
    result = conlleval.evaluate(lines)["overall"]["chunks"]["evals"]
    assert result["f1"] == pytest.approx(trained_test_f1(demo_run))


def write_jsonl(path, sentences, tags) -> None:
    lines = [json.dumps({"tokens": words, "ner_tags": t}) for words, t in zip(sentences, tags)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def evaluate(model_dir, output_dir, test_file) -> float:
    args = [
        "--config",
        SCRATCH,
        "model.scratch=null",
        f"model.name_or_path={model_dir}",
        "model.fine_tune=false",
        f"data.test_file={test_file}",
        f"training.output_dir={output_dir}",
    ]
    assert train(args) == 0
    return json.loads((output_dir / METRICS_FILE).read_text())["test"]["f1"]


def test_words_without_sub_tokens_score_as_if_they_were_not_there(demo_run, tmp_path, caplog):
    """A `\u200b O` line (CoNLL) or a "" word (JSON lines) becomes no sub-token at all; the words
    after it keep their own predictions instead of their neighbour's."""
    rows = read_conll(DEMO_TEST)
    sentences, tags = rows[TOKENS][:40], rows[TAGS][:40]
    write_jsonl(tmp_path / "plain.jsonl", sentences, tags)
    # after the first O word that no I- word follows: outside every entity, with words after it
    at = [
        next((i + 1 for i in range(len(t)) if t[i] == "O" and not (t[i + 1 :] or ["O"])[0].startswith("I-")), len(t))
        for t in tags
    ]
    with_zwsp = [words[:i] + [ZWSP] + words[i:] for words, i in zip(sentences, at)]
    with_empty = [words[:i] + [""] + words[i:] for words, i in zip(sentences, at)]
    with_tags = [t[:i] + ["O"] + t[i:] for t, i in zip(tags, at)]
    assert sum(i < len(t) for t, i in zip(tags, at)) > 30  # most have words after the invisible one
    write_jsonl(tmp_path / "zwsp.jsonl", with_zwsp, with_tags)
    write_jsonl(tmp_path / "empty.jsonl", with_empty, with_tags)
    conll = "\n\n".join("\n".join(f"{w} {t}" for w, t in zip(words, t)) for words, t in zip(with_zwsp, with_tags))
    (tmp_path / "zwsp.txt").write_text(conll + "\n", encoding="utf-8")

    plain = evaluate(demo_run, tmp_path / "plain", tmp_path / "plain.jsonl")
    assert plain > 0.5
    for name in ("zwsp.jsonl", "empty.jsonl", "zwsp.txt"):
        caplog.clear()
        assert evaluate(demo_run, tmp_path / name.replace(".", "-"), tmp_path / name) == plain, name
        assert "40 words become no sub-token at all" in caplog.text, name
        assert "beyond max_length" not in caplog.text
