"""infer.py's pipeline uses bert_ner.words' words and entities: the issue's inputs, as table cases.

A lookup tagger stands in for a trained model here, so that each case says exactly which tag each
sub-token gets and the expected entities follow from the rules alone: words split by bert_ner.words,
a word tagged by its first sub-token, Viterbi-decoded IOB2, offsets into the input itself.
"""

import pytest
import torch
from transformers import BertConfig, PreTrainedModel
from transformers.modeling_outputs import TokenClassifierOutput

from bert_ner import Tagger
from bert_ner.inference import prepare
from bert_ner.record import ModelRecord
from bert_ner.torch_backend import TaggingPipeline

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
TAGS = {  # sub-token -> the tag the tagger is surest of (and its second choice); every other sub-token is O
    "U": "B-MISC",
    "Reuters": "B-ORG",
    "Reu": "B-ORG",
    "##ters": "I-ORG",
    "Group": "I-ORG",
    "Jean": "B-PER",
    "Pierre": "I-PER",
    "Dupont": "I-PER",
    "Anna": "B-PER",
    "Schmidt": "I-PER",
    "Paris": "B-LOC",
    "Euro": "B-MISC",
    "Zone": ("I-ORG", "I-MISC"),
}
VOCAB = sorted(set(TAGS) | {".", "-", "S", "based", "The", "firm", "said", "so", "met", "Officials", "from", "arrived", "in"})


class LookupTagger(PreTrainedModel):
    """A token classifier whose logits are a fixed table lookup of each sub-token id."""

    config_class = BertConfig

    def __init__(self, config, table: torch.Tensor):
        super().__init__(config)
        self.table = torch.nn.Embedding.from_pretrained(table)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, **_):
        return TokenClassifierOutput(logits=self.table(input_ids))


@pytest.fixture(scope="module")
def tagger():
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + VOCAB
    # Cased, but accents stripped as uncased models do, so an NFD accent still reaches the word's piece.
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=False, strip_accents=True)
    table = torch.full((len(tokenizer), len(LABELS)), -5.0)
    table[:, 0] = 5.0
    for token, tags in TAGS.items():
        best, *second = (tags,) if isinstance(tags, str) else tags
        row = tokenizer.convert_tokens_to_ids(token)
        table[row, 0], table[row, LABELS.index(best)] = -5.0, 5.0
        for tag in second:
            table[row, LABELS.index(tag)] = 2.0
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=512, id2label=dict(enumerate(LABELS)))
    return LookupTagger(config, table), tokenizer


def tagger_of(model, tokenizer, **record) -> Tagger:
    return Tagger(TaggingPipeline(model, tokenizer, record=ModelRecord(**record), device="cpu"))


def entities_of(tagger, text: str, viterbi: bool = True, max_length: int | None = None) -> list[tuple]:
    (found,) = tagger_of(*tagger, viterbi=viterbi, max_length=max_length).tag([text], batch_size=4)
    assert all(text[e["start"] : e["end"]] == e["word"] for e in found)
    return [(e["entity_group"], e["word"], e["start"], e["end"]) for e in found]


SHY, ZWJ, ZWSP, FFFD, BELL, ACUTE = "\u00ad", "\u200d", "\u200b", "\ufffd", "\x07", "\u0301"


@pytest.mark.parametrize(
    "text, expected",
    [
        # the pipeline's own words made MISC "U" (a fragment) and PER "Jean" + "Pierre"
        ("The U.S.-based firm Reuters said so .", [("MISC", "U.S.-based", 4, 14), ("ORG", "Reuters", 20, 27)]),
        ("Jean-Pierre Dupont met Anna Schmidt .", [("PER", "Jean-Pierre Dupont", 0, 18), ("PER", "Anna Schmidt", 23, 35)]),
        # characters the normalizer removes inside a word: it stays one word, tagged once
        (f"Officials from Reu{SHY}ters arrived in Paris .", [("ORG", f"Reu{SHY}ters", 15, 23), ("LOC", "Paris", 35, 40)]),
        (f"Anna Schmidt Reu{SHY}ters said so .", [("PER", "Anna Schmidt", 0, 12), ("ORG", f"Reu{SHY}ters", 13, 21)]),
        (f"Anna Schmidt Reu{ZWJ}ters said so .", [("PER", "Anna Schmidt", 0, 12), ("ORG", f"Reu{ZWJ}ters", 13, 21)]),
        (f"Anna Schmidt Reu{FFFD}ters said so .", [("PER", "Anna Schmidt", 0, 12), ("ORG", f"Reu{FFFD}ters", 13, 21)]),
        (f"Anna Schmidt Reu{BELL}ters said so .", [("PER", "Anna Schmidt", 0, 12), ("ORG", f"Reu{BELL}ters", 13, 21)]),
        (f"Anna Schmidt{ACUTE} met Reuters .", [("PER", f"Anna Schmidt{ACUTE}", 0, 13), ("ORG", "Reuters", 18, 25)]),
        # a word that becomes no sub-token at all: it shifts nothing, and inside a name it stays in it
        (f"Anna {ZWSP} Schmidt met Reuters .", [("PER", f"Anna {ZWSP} Schmidt", 0, 14), ("ORG", "Reuters", 19, 26)]),
        (f"{ZWSP} Reuters said so .", [("ORG", "Reuters", 2, 9)]),
        # B-MISC I-ORG: one entity, as train.py scores it (strict IOB2 after Viterbi)
        ("Euro Zone said so .", [("MISC", "Euro Zone", 0, 9)]),
        ("Reuters Group said so .", [("ORG", "Reuters Group", 0, 13)]),
    ],
)
def test_entities_from_raw_text(tagger, text, expected):
    assert entities_of(tagger, text) == expected


def test_without_viterbi_an_i_tag_that_continues_nothing_is_no_entity(tagger):
    """Strict IOB2 either way: `Zone` alone (I-ORG after B-MISC) is not an ORG."""
    assert entities_of(tagger, "Euro Zone said so .", viterbi=False) == [("MISC", "Euro", 0, 4)]


def test_max_length_comes_from_the_trained_config_and_long_texts_keep_every_entity(tagger):
    text = " ".join(["Anna Schmidt met Reuters in Paris"] * 30) + " ."  # one sentence of 181 words
    found = entities_of(tagger, text, max_length=16)  # 16 sub-tokens a window, overlapping by 4
    assert len(found) == 90
    assert [kind for kind, *_ in found[:3]] == ["PER", "ORG", "LOC"]


DOCUMENT_LINES = [
    "Anna Schmidt met Reuters in Paris .",
    "The firm said so .",
    "Jean-Pierre Dupont arrived from Paris .",
    "Reuters said so .",
]


@pytest.mark.parametrize("context_tokens, max_length", [(4, 24), (16, 24), (2, 12), (64, 512)])
def test_inference_builds_the_context_windows_train_py_builds(tagger, context_tokens, max_length, tmp_path):
    """The same sentences of one document, encoded by train.py (with_context, tokenize_and_align)
    and by infer.py's pipeline (a line each, as --documents gives them): the same sub-tokens."""
    from datasets import Dataset

    from bert_ner.context import with_context
    from bert_ner.words import split_words, tokenize_and_align

    model, tokenizer = tagger
    sentences = [[line[s:e] for s, e in split_words(line)] for line in DOCUMENT_LINES]
    dataset = Dataset.from_dict(
        {"tokens": sentences, "tags": [["O"] * len(s) for s in sentences], "document": [0] * len(sentences)}
    )
    dataset = with_context(dataset, tokenizer, context_tokens, max_length)
    label2id = {label: i for i, label in enumerate(LABELS)}
    trained = dataset.map(
        tokenize_and_align,
        batched=True,
        fn_kwargs={"tokenizer": tokenizer, "label2id": label2id, "max_length": max_length, "label_all_tokens": False},
    )
    for reader in (tokenizer, fast_tokenizer(tokenizer, tmp_path)):  # the PyTorch pipeline's, and the ONNX backends'
        prepared = prepare(reader, "\n".join(DOCUMENT_LINES), max_length=max_length, stride=4, context_tokens=context_tokens)
        assert [ids["input_ids"] for ids, _ in prepared.inputs] == trained["input_ids"]
    assert any(len(left) for left in dataset["left_context"])  # there was context to build


def fast_tokenizer(tokenizer, directory):
    """The ONNX backends' tokenizer, from the same tokenizer.json."""
    from bert_ner.onnx_backend import FastTokenizer

    tokenizer.backend_tokenizer.save(str(directory / "tokenizer.json"))
    return FastTokenizer(directory / "tokenizer.json")


def test_a_model_trained_without_context_reads_each_sentence_alone(tagger):
    """As train.py encoded its sentences: one input per sentence, decoded sentence by sentence,
    whether the sentences share a line or not."""
    _, tokenizer = tagger
    alone = [tokenizer(line.split(), is_split_into_words=True)["input_ids"] for line in DOCUMENT_LINES]
    for joiner in (" ", "\n"):
        prepared = prepare(tokenizer, joiner.join(DOCUMENT_LINES), max_length=512, stride=128, context_tokens=0)
        assert prepared.groups == [range(0, 7), range(7, 12), range(12, 18), range(18, 22)]
        assert [ids["input_ids"] for ids, _ in prepared.inputs] == alone


def test_the_onnx_backends_tokenizer_makes_the_same_windows(tagger, tmp_path):
    """A text far longer than the window: transformers' tokenizer and the tokenizers package alone
    give the same overlapping windows and the same word of each sub-token."""
    _, tokenizer = tagger
    text = " ".join(line.rstrip(" .") for line in DOCUMENT_LINES * 6) + " ."  # one sentence of 108 words
    expected = prepare(tokenizer, text, max_length=16, stride=4)
    assert len(expected.inputs) > 5
    assert prepare(fast_tokenizer(tokenizer, tmp_path), text, max_length=16, stride=4).inputs == expected.inputs


@pytest.mark.parametrize(
    "lines, expected",
    [
        (["a", "b", "", "c"], [[0, 1], [3]]),
        (["", "a", "  ", "b", "c", ""], [[1], [3, 4]]),
        (["a"], [[0]]),
        (["", ""], []),
    ],
)
def test_documents_are_runs_of_non_blank_lines(lines, expected):
    from bert_ner.tagger import document_lines

    assert document_lines(lines) == expected


def test_chunks_for_documents_never_cut_a_document():
    from bert_ner.inference import chunks

    lines = ["a", "b", "c", "", "d", "e", "", "f"]
    assert list(chunks(iter(lines), 2, lambda line: not line.strip())) == [["a", "b", "c"], ["", "d", "e"], ["", "f"]]
    assert list(chunks(iter(lines), 3)) == [["a", "b", "c"], ["", "d", "e"], ["", "f"]]


def test_with_documents_each_line_keeps_its_record_and_a_blank_line_ends_the_document(tagger, monkeypatch):
    """Lines of one document are read together (each other's context); a blank line starts a new one."""
    in_context = tagger_of(*tagger, context_tokens=16, max_length=64)
    seen = []
    real_tag = in_context.tag

    def spy(texts, *options):
        seen.extend(texts)
        return real_tag(texts, *options)

    monkeypatch.setattr(in_context, "tag", spy)
    lines = ["Anna Schmidt met Reuters .", "Paris said so .", "", "Reuters said so ."]
    found = in_context.tag_lines(lines, batch_size=4, documents=True)
    assert seen == ["Anna Schmidt met Reuters .\nParis said so .", "Reuters said so ."]
    assert [[(e["entity_group"], e["word"], e["start"], e["end"]) for e in line] for line in found] == [
        [("PER", "Anna Schmidt", 0, 12), ("ORG", "Reuters", 17, 24)],
        [("LOC", "Paris", 0, 5)],
        [],
        [("ORG", "Reuters", 0, 7)],
    ]
