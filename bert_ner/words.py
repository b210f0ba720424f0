"""One word, one entity: the only place that decides what a word is and what an entity is.

train.py, its scores, the error analysis, infer.py (PyTorch and ONNX) and the HTML view all go
through these steps, so that what infer.py finds on text is what train.py scored:

1. text -> words (`split_sentences`, `split_words`): character spans, sentences by pySBD in the
   model's language, then words by NLTK's Treebank-style word tokenizer (CoNLL's conventions:
   `U.S.-based` stays one word, `Obama's` is `Obama` `'s`), each character of a script written
   without spaces a word of its own (WORD_RULES); training data comes already split into words,
   and shows which rules and language a model is to read raw text with (`rules_of`).
2. words -> model inputs (`encode`, `encode_with_context`, `tokenize_and_align`): a fast
   tokenizer on the words, a sentence between its neighbours' words where the model was trained
   with document context; `word_ids()` ties every sub-token to its word.
3. sub-token outputs -> one score vector per word (`word_scores`): the word's first sub-token, as
   training labels it, paired by `word_ids`, never by position.
4. scores -> one tag per word (`decode`): a Viterbi pass that only allows valid IOB2 (I-X only
   after B-X or I-X), or the most likely tag of each word when Viterbi is off.
5. tags -> entities (`spans`, `entities`): strict IOB2, as seqeval and conlleval read them.
"""

import functools
import importlib.util
import re
import sys
import types
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bert_ner.context import LEFT, RIGHT, context_words, room, sub_token_lengths
from bert_ner.tags import OUTSIDE, TAGS, TOKENS, to_iob2

IGNORE_INDEX = -100  # PyTorch's cross-entropy skips this label: special tokens, later sub-tokens
NO_WORD = -1  # in a `word_index` row: a special token, padding, or a context word (not scored)
AGGREGATIONS = ("first", "average", "max")  # how a word's sub-tokens combine; "first" is how training labels
DEFAULT_AGGREGATION = "first"
SCORE_DECIMALS = 4  # an entity's score is reported so; thresholds are chosen, and shown, on these

Span = tuple[str, int, int]  # (entity type, first word, one past the last word)


def shown_score(score: float) -> str:
    """A score or threshold as every view shows it: SCORE_DECIMALS fixed decimals, so that a
    printed threshold compares digit for digit with the scores in a table."""
    return f"{score:.{SCORE_DECIMALS}f}"


# ---------------------------------------------------------------------------------------------
# 1. text -> words


CONTINUING = ("Mn", "Me", "Cf")  # Unicode categories of marks and joiners: part of the character before them
EMOJI_MODIFIERS = range(0x1F3FB, 0x1F400)  # skin tones (category Sk): part of the emoji before them
REPLACEMENT_CHARACTER = "\ufffd"  # category So, but it stands for a lost letter of the word around it

# How raw text becomes words (the saved model's record names the rules it was trained with):
# - treebank: NLTK's Treebank rules for text written with spaces; each Han, Hiragana and Katakana
#   character and each CJK punctuation mark its own word, as the NER data of Chinese and Japanese
#   are split (MSRA, People's Daily, Weibo, Resume), so that a Latin name next to them stays whole.
#   Thai, Lao, Khmer and Myanmar text is split at spaces, as written.
# - characters: as treebank, and every Thai, Lao, Khmer and Myanmar character (with its marks) its
#   own word too: for models trained on character-level data.
TREEBANK, CHARACTERS = "treebank", "characters"
WORD_RULES = (TREEBANK, CHARACTERS)
DEFAULT_LANGUAGE = "en"  # the sentence splitter's language: one of pySBD's codes (SENTENCE_LANGUAGES)
SENTENCE_LANGUAGES = tuple("am ar bg da de el en es fa fr hi hy it ja kk mr my nl pl ru sk ur zh".split())

# Code point ranges of the scripts written without spaces.
CJK_RANGES = (
    (0x3000, 0x303F),  # CJK symbols and punctuation (、。「」〇 ...)
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK unified ideographs extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF61, 0xFF9F),  # halfwidth CJK punctuation and Katakana
    (0x20000, 0x3FFFF),  # CJK ideographs, extensions B and later
)
SOUTHEAST_ASIAN_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x19E0, 0x19FF),  # Khmer symbols
    (0xA9E0, 0xA9FF),  # Myanmar extended B
    (0xAA60, 0xAA7F),  # Myanmar extended A
)
# Quote marks that can stick to a word's edge where NLTK's rules leave them (`‹Reuters›`,
# `「Reuters」`, `‛Reuters‟`): with those of categories Pi and Pf, never part of a word's edge.
QUOTES = frozenset("\"'`‚„‛‟‹›«»「」『』〝〞〟﹁﹂﹃﹄＂＇｢｣")


def _in_ranges(character: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    code = ord(character)
    return any(low <= code <= high for low, high in ranges)


def _is_symbol(character: str) -> bool:
    """Emoji, pictographs and other symbols (Unicode category So): never part of a word."""
    if character == REPLACEMENT_CHARACTER:
        return False
    return unicodedata.category(character) == "So" or ord(character) in EMOJI_MODIFIERS


def _is_edge(character: str) -> bool:
    """A character an entity never starts or ends with: a format character (category Cf, such as a
    zero-width space, a byte order mark or a direction mark) or a quote mark."""
    return character in QUOTES or unicodedata.category(character) in ("Cf", "Pi", "Pf")


def _own_word(character: str, word_rules: str) -> bool:
    """Whether `character` is a word by itself under `word_rules` (WORD_RULES)."""
    if _in_ranges(character, CJK_RANGES):
        return not character.isspace()  # U+3000, the ideographic space, separates words
    if 0xFF00 <= ord(character) <= 0xFF60 and unicodedata.category(character)[0] == "P":
        return True  # full-width punctuation of CJK text (，！？：)
    return word_rules == CHARACTERS and _in_ranges(character, SOUTHEAST_ASIAN_RANGES)


def _split_word(text: str, start: int, end: int, word_rules: str = TREEBANK) -> list[tuple[int, int]]:
    """Split the word text[start:end] that NLTK's rules found: where symbols meet other characters
    (`Paris😀` -> `Paris` `😀`); around each character that is a word by itself (`_own_word`:
    `Schmidt東京` -> `Schmidt` `東` `京`); and the format characters and quote marks at its edges
    off it (`\u200bReuters` -> `\u200b` `Reuters`). Marks and joiners (variation selectors,
    zero-width joiners) stay with what they follow, so an emoji sequence or a Persian word with a
    joiner stays whole."""
    if text[start:end].isascii():  # NLTK's rules already split ASCII quotes; most words, checked at C speed
        return [(start, end)]
    edges = []
    while start < end and _is_edge(text[start]):
        edges.append((start, start + 1))
        start += 1
    tail = end
    while tail > start and _is_edge(text[tail - 1]):
        tail -= 1
    if tail > start and _is_symbol(text[tail - 1]):  # tag characters and joiners after an emoji are part of it
        while tail < end and unicodedata.category(text[tail]) == "Cf":
            tail += 1
    pieces, piece_start, previous = [], start, None
    for i in range(start, tail):
        character = text[i]
        if unicodedata.category(character) in CONTINUING and i > start:
            continue  # a mark or joiner stays with the character before it
        kind = "own" if _own_word(character, word_rules) else _is_symbol(character)
        if previous is not None and (kind != previous or kind == "own"):
            pieces.append((piece_start, i))
            piece_start = i
        previous = kind
    if tail > start:
        pieces.append((piece_start, tail))
    return edges + pieces + [(i, i + 1) for i in range(tail, end)]


# How a line ends, for every reader of text (infer.py's input, the data files, the span records'
# texts): LF, CRLF, or a lone CR, as old Mac files have (Python's universal newlines).
LINE_END = re.compile(r"\r\n?|\n")


def split_lines(text: str) -> list[str]:
    """The lines of `text` without their ends (LINE_END); a line end at the very end of the text
    starts no empty line after it: "a\\rb\\r\\n" -> ["a", "b"]."""
    lines = LINE_END.split(text)
    return lines[:-1] if len(lines) > 1 and not lines[-1] else lines


def line_starts(text: str) -> tuple[int, ...]:
    """Where each line of `text` after the first starts (character offsets; LINE_END)."""
    return tuple(end for match in LINE_END.finditer(text) if (end := match.end()) < len(text))


def rules_of(sentences: Iterable[list[str]]) -> tuple[str, str]:
    """The word rules and sentence language that training words show (a model's record says both,
    so that infer.py splits raw text as its training data was split): CHARACTERS where most words
    of scripts written without spaces are single characters (with their marks), as in MSRA or
    People's Daily; the language ja where such words hold kana, zh where they hold Han; else
    TREEBANK and DEFAULT_LANGUAGE, as for English."""
    single = several = 0
    kana = han = False
    for words in sentences:
        for word in words:
            if word.isascii() or not any(_own_word(character, CHARACTERS) for character in word):
                continue
            kana = kana or any(0x3040 <= ord(character) <= 0x30FF for character in word)
            han = han or any(_in_ranges(character, CJK_RANGES) for character in word)
            letters = [character for character in word if unicodedata.category(character) not in CONTINUING]
            single, several = (single + 1, several) if len(letters) == 1 else (single, several + 1)
    language = "ja" if kana else "zh" if han else DEFAULT_LANGUAGE
    return (CHARACTERS if single > several else TREEBANK), language


def sentence_starts(text: str, breaks: tuple[int, ...] = (), language: str = DEFAULT_LANGUAGE) -> list[int]:
    """Where each sentence of `text` starts (character offsets, the first is 0), by pySBD's
    rule-based splitter for `language` (SENTENCE_LANGUAGES; no model or data download): in English,
    abbreviations such as `U.S.` or `Dr.` do not end a sentence; CJK full stops (`。！？`) end one in
    every language. `breaks` are offsets where a sentence starts in any case (the lines of a
    document). An English text that pySBD would keep whole skips it (`_one_sentence`)."""
    starts = set(breaks)
    if language != DEFAULT_LANGUAGE or not _one_sentence(text):
        for start in _pysbd_starts(text, language):
            if not _inside_a_name(text, start):
                starts.add(_base_of(text, start))
    # Only the starts are used, so every character lands in exactly one sentence whatever the ends.
    return sorted({0} | {start for start in starts if 0 < start < len(text)})


# pySBD's time grows with the square of the text it is given, so it reads a long text in pieces
# of at most this many characters, each starting where a sentence of the one before starts.
PIECE = 5000


def _pysbd_starts(text: str, language: str) -> set[int]:
    """The sentence starts pySBD finds in `text`, read PIECE characters at a time: the last sentence
    of a piece is read again at the start of the next, with what follows it, so a sentence end
    is judged with the text on both sides, as when pySBD reads the whole text. A sentence longer
    than a piece is cut at the piece's last space (or its end, where it has none)."""
    starts: set[int] = set()
    base = 0
    while base < len(text):
        end = base + PIECE
        found = [base + start for start in _piece_starts(text[base:end], language)]
        if end >= len(text):
            starts.update(found)
            break
        if len(found) > 1:
            starts.update(found[:-1])
            base = found[-1]
        else:
            starts.update(found)
            cut = max(text.rfind(" ", base + 1, end), text.rfind("\n", base + 1, end))
            base = cut + 1 if cut > base else end
    return starts


def _piece_starts(piece: str, language: str) -> list[int]:
    """Where pySBD starts each sentence of `piece`, in order."""
    # Each sentence pySBD returns is the text's own characters (clean=False). Its `segment` looks
    # each one up with a regex compiled for that sentence alone, which was half of infer.py's
    # splitting time on short lines. `str.find` from where the last sentence ended finds the same
    # starts, except where pySBD returns two sentences that share a character (`great....  Next`):
    # its regex could start the second inside the first; here it starts after it.
    starts, cursor = [], 0
    for sentence in _sentence_splitter(language).processor(piece).process():
        start = piece.find(sentence, cursor)
        if start >= 0:
            starts.append(start)
            cursor = start + len(sentence)
    return starts


# pySBD ends a sentence after an abbreviation it does not take for a title when a capital follows.
# In text to tag, these abbreviations mostly sit inside a name (`Samsung Electronics Co. Ltd.`,
# `Warner Bros. Pictures`, `Ft. Worth`), where a false sentence end cuts the entity in two, since
# tags are decoded sentence by sentence; a missed end (`Apple Inc. The firm ...`) only reads two
# sentences as one. From pySBD's English abbreviations (pysbd/lang/english.py), those of names.
NAME_ABBREVIATIONS = frozenset({"Assn.", "Bros.", "Co.", "Corp.", "Cos.", "Dept.", "Ft.", "Inc.", "Ltd.", "Mfg.", "Univ."})


def _inside_a_name(text: str, start: int) -> bool:
    """Whether a sentence pySBD starts at `start` follows one of NAME_ABBREVIATIONS, on the same line."""
    window = max(0, start - 16)  # a few characters back, not the whole text: a long text has many starts
    before = text[window:start].rstrip(" \t")
    word = before.rsplit(None, 1)[-1] if before.strip() else ""
    first = window + len(before) - len(word)  # where that word starts: a whole word, not the end of one
    return word in NAME_ABBREVIATIONS and (first == 0 or text[first - 1].isspace())


def _base_of(text: str, start: int) -> int:
    """`start`, or where marks and joiners there begin with the character they belong to: pySBD
    deletes its placeholder `☝` from `☝️ Look.` and starts the sentence at the variation selector."""
    while start > 0 and unicodedata.category(text[start]) in CONTINUING:
        start -= 1
    return start


# pySBD ends a sentence only at one of these marks, at a line break, after a list item such as
# `a)` or `2)`, after a dash and a quote, after a quote or bracket that opens the text (`"Go," he
# said.`), or at one of the characters its rules use as placeholders (`☄`, `☝`, which it may
# also delete): pysbd/processor.py, lists_item_replacer.py, lang/common/. A text with none of
# them, but for one mark at its end, is one sentence and goes without pySBD: two thirds of
# CoNLL-2003's sentences, whose splitting then takes a third less time, with the same words on
# every sentence of CoNLL-2003 and WNUT-17 (`python bench/one_sentence.py`) and on the cases and
# random texts of tests/test_words.py.
_SENTENCE_ENDS = "。．.！!?？"  # pySBD's Punctuations
_PYSBD_PLACEHOLDERS = "ƪȸȹᓰᓱᓳᓴᓷᓸ∮∯⌬⎋☄☇☈☉☏☝♝♟♨♬♭✂"
_MAY_END_SENTENCE = re.compile(
    f"[{_SENTENCE_ENDS}{_PYSBD_PLACEHOLDERS})\n\r]" + r"|-[\"'“”]\s"  # `-" He`: QUOTATION_AT_END_OF_SENTENCE_REGEX
)
_OPENING_QUOTES_AND_BRACKETS = tuple("\"'“‘「（(")


def _one_sentence(text: str) -> bool:
    """Whether pySBD would keep `text` whole, by the rule above (False when unsure)."""
    body = text.strip()
    if body[-1:] and body[-1] in _SENTENCE_ENDS:
        body = body[:-1]
    return not body.startswith(_OPENING_QUOTES_AND_BRACKETS) and _MAY_END_SENTENCE.search(body) is None


@functools.cache
def _sentence_splitter(language: str = DEFAULT_LANGUAGE):
    import pysbd

    return pysbd.Segmenter(language=language, clean=False)


NLTK_STAND_INS = ("nltk", "nltk.tokenize")  # the packages around the one module the word rules need


@functools.cache
def _word_tokenizer():
    """NLTK's NLTKWordTokenizer. Where the process has not imported NLTK, its module is imported
    without the `nltk` and `nltk.tokenize` packages' __init__: those import all of NLTK, and SciPy
    through nltk.metrics where SciPy is installed, which made a one-sentence run of the ONNX
    backend several times slower (bench/cold_start.py). The stand-in packages and what was
    imported under them are removed again, so that a later `import nltk` is the whole, real one."""
    if "nltk" in sys.modules:
        from nltk.tokenize.destructive import NLTKWordTokenizer

        return NLTKWordTokenizer()
    spec = importlib.util.find_spec("nltk")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("No module named 'nltk'")
    root = Path(spec.submodule_search_locations[0])
    for name, path in zip(NLTK_STAND_INS, (root, root / "tokenize")):
        sys.modules[name] = stand_in = types.ModuleType(name)
        stand_in.__path__ = [str(path)]
    try:
        return importlib.import_module("nltk.tokenize.destructive").NLTKWordTokenizer()
    finally:
        for name in [name for name in sys.modules if name == "nltk" or name.startswith("nltk.")]:
            del sys.modules[name]


def split_sentences(
    text: str, breaks: tuple[int, ...] = (), word_rules: str = TREEBANK, language: str = DEFAULT_LANGUAGE
) -> list[list[tuple[int, int]]]:
    """The words of raw text as (start, end) character offsets, grouped by sentence; sentences
    without words are left out. `word_rules` (WORD_RULES) and `language` (SENTENCE_LANGUAGES) are
    the saved model's (bert_ner.record).

    The text is split into sentences first (`sentence_starts`), so that a period ends a sentence
    and not a word (`Paris.` is `Paris` `.` mid-paragraph too); then each sentence into words by
    NLTK's NLTKWordTokenizer (the improved Penn Treebank rules behind nltk.word_tokenize, no
    data download). Together they reproduce more of CoNLL-2003's test tokens, on sentences and on
    whole articles, than the other splitters bench/word_splitters.py measures (docs/results.md).
    Then `_split_word`: symbols stuck to a word, the characters of scripts written without
    spaces, and format characters and quote marks at a word's edge become words of their own.
    """
    tokenizer, sentences = _word_tokenizer(), []
    starts = sentence_starts(text, breaks, language) if text else []
    for first, end in zip(starts, starts[1:] + [len(text)]):
        words = []
        for start, stop in tokenizer.span_tokenize(text[first:end]):
            words += _split_word(text, first + start, first + stop, word_rules)
        if words:
            sentences.append(words)
    return sentences


def split_words(text: str, word_rules: str = TREEBANK, language: str = DEFAULT_LANGUAGE) -> list[tuple[int, int]]:
    """The words of raw text as (start, end) character offsets; text[start:end] is the word
    (`split_sentences`, without the grouping)."""
    return [word for sentence in split_sentences(text, (), word_rules, language) for word in sentence]


# ---------------------------------------------------------------------------------------------
# 2. words -> model inputs (training: sub-token labels)


def encode(tokenizer, words: list[list[str]], max_length: int | None = None, **options):
    """Sub-token inputs for pre-split words, cut at `max_length` sub-tokens (special tokens
    included; None = never cut); `options` go to the tokenizer (stride and
    return_overflowing_tokens for the windows of a long text)."""
    cut = {"truncation": True, "max_length": max_length} if max_length is not None else {}
    return tokenizer(words, is_split_into_words=True, **cut, **options)


def visible_words(batch, tokenizer) -> dict:
    """`Dataset.map`: each sentence without the words that become no sub-token at all (a zero-width
    space, a control character or an empty string alone). The model cannot see them, so they are
    neither labelled nor scored: a file with them scores as the file without them. Tags are
    repaired to IOB2 after (a dropped B- word leaves an I- that now opens the entity)."""
    pieces = encode(tokenizer, batch[TOKENS], add_special_tokens=False)
    tokens, tags = [], []
    for i, (words, word_tags) in enumerate(zip(batch[TOKENS], batch[TAGS])):
        seen = {w for w in pieces.word_ids(i) if w is not None}
        tokens.append([word for j, word in enumerate(words) if j in seen])
        tags.append(to_iob2([tag for j, tag in enumerate(word_tags) if j in seen]))
    return {TOKENS: tokens, TAGS: tags}


def encode_with_context(tokenizer, sentences: list[list[str]], context_tokens: int, max_length: int):
    """The model inputs of one document's sentences, each between up to `context_tokens`
    sub-tokens of its neighbours' words on each side, exactly as train.py encodes them
    (`with_context`, then `tokenize_and_align`); per input the sentence word of each sub-token
    (`sentence_word_index`); and each sentence's own size in sub-tokens."""
    lengths = sub_token_lengths(tokenizer, sentences)
    pairs = context_words(sentences, lengths, [0] * len(sentences), context_tokens, room(tokenizer, max_length))
    encoded = encode(tokenizer, [left + words + right for (left, right), words in zip(pairs, sentences)], max_length)
    indexes = [
        sentence_word_index(encoded.word_ids(i), len(left), len(words))
        for i, ((left, _), words) in enumerate(zip(pairs, sentences))
    ]
    return encoded, indexes, [sum(counts) for counts in lengths]


def inside_labels(labels: list[str]) -> list[int]:
    """For each label id, the id to give a word's later sub-tokens: B-X -> I-X, anything else itself."""
    index = {label: i for i, label in enumerate(labels)}
    return [index.get("I-" + label[2:], i) if label.startswith("B-") else i for i, label in enumerate(labels)]


def align_labels(word_ids: list[int | None], word_labels: list[int], label_all_tokens: bool, inside: list[int]) -> list[int]:
    """One label per sub-token: the word's label on its first sub-token; on later ones IGNORE_INDEX,
    or the word's I- label when `label_all_tokens`; IGNORE_INDEX on special tokens and on words
    whose label is IGNORE_INDEX (context)."""
    aligned, previous = [], None
    for word in word_ids:
        if word is None or word_labels[word] == IGNORE_INDEX:
            aligned.append(IGNORE_INDEX)
        elif word != previous:
            aligned.append(word_labels[word])
        else:
            aligned.append(inside[word_labels[word]] if label_all_tokens else IGNORE_INDEX)
        previous = word
    return aligned


def sentence_word_index(word_ids: list[int | None], first: int, count: int) -> list[int]:
    """Per sub-token, the index of its word in the sentence (words first..first+count-1 of the
    input), or NO_WORD for special tokens and context words."""
    return [w - first if w is not None and first <= w < first + count else NO_WORD for w in word_ids]


def words_kept(word_ids: list[int | None], first: int, count: int) -> int:
    """How many of the words first..first+count-1 have at least one sub-token in the input."""
    return len({w for w in word_ids if w is not None and first <= w < first + count})


def tokenize_and_align(batch, tokenizer, label2id: dict[str, int], max_length: int, label_all_tokens: bool) -> dict:
    """Tokenize a batch of sentences, between their context words when the batch has them, and give
    every sub-token its label and its sentence word (for `Dataset.map`). Context words are never
    labelled. `words_kept` counts the words left after truncation."""
    no_context = [[] for _ in batch[TOKENS]]
    lefts, rights = batch.get(LEFT, no_context), batch.get(RIGHT, no_context)
    words = [left + sentence + right for left, sentence, right in zip(lefts, batch[TOKENS], rights)]
    encoded = encode(tokenizer, words, max_length)
    inside = inside_labels(list(label2id))
    encoded["labels"], encoded["word_index"], encoded["words_kept"] = [], [], []
    for i, (left, tags, right) in enumerate(zip(lefts, batch[TAGS], rights)):
        word_ids = encoded.word_ids(i)
        word_labels = [IGNORE_INDEX] * len(left) + [label2id[tag] for tag in tags] + [IGNORE_INDEX] * len(right)
        encoded["labels"].append(align_labels(word_ids, word_labels, label_all_tokens, inside))
        encoded["word_index"].append(sentence_word_index(word_ids, len(left), len(tags)))
        encoded["words_kept"].append(words_kept(word_ids, len(left), len(tags)))
    return encoded


# ---------------------------------------------------------------------------------------------
# 3. sub-token outputs -> one score vector per word


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis, computed stably in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def tempered(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities over the last axis as if their logits were divided by `temperature`:
    softmax(logits / T) = p ** (1 / T), renormalised, since the logits' log-sum-exp cancels. T > 1
    softens overconfident probabilities (bert_ner.calibration fits T); T = 1 gives them back."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if temperature == 1:
        return probabilities
    powered = np.clip(probabilities, 1e-300, None) ** (1.0 / temperature)
    return powered / powered.sum(axis=-1, keepdims=True)


def _aggregate(probabilities: np.ndarray, aggregation: str) -> np.ndarray:
    """One word's label probabilities from its sub-tokens' (shape [sub-tokens, labels])."""
    if aggregation == "first":
        return probabilities[0]
    if aggregation == "average":
        return probabilities.mean(axis=0)
    if aggregation == "max":  # the sub-token the model is surest about speaks for the word
        return probabilities[probabilities.max(axis=1).argmax()]
    raise ValueError(f"aggregation must be one of {AGGREGATIONS}, not {aggregation!r}")


def word_scores(windows, word_count: int, aggregation: str = DEFAULT_AGGREGATION) -> tuple[np.ndarray, np.ndarray]:
    """Label probabilities per word, shape [word_count, labels], and which words have any (a word
    cut off by truncation, or one that became no sub-token, has none: shape [word_count], bool).

    `windows` are (word index per sub-token, None or NO_WORD where none; probabilities, shape
    [sub-tokens, labels]) for the model inputs that cover the words. A word seen by several
    overlapping windows of a long text takes its scores from the one where it sits furthest from
    an edge, where the model saw most of its surroundings.
    """
    scores, margin = None, np.full(word_count, -1)
    for word_index, probabilities in windows:
        probabilities = np.asarray(probabilities)
        if scores is None:
            scores = np.zeros((word_count, probabilities.shape[-1]))
        positions: dict[int, list[int]] = {}
        for position, word in enumerate(word_index):
            if word is not None and word != NO_WORD:
                positions.setdefault(word, []).append(position)
        if not positions:
            continue
        lowest, highest = min(p[0] for p in positions.values()), max(p[-1] for p in positions.values())
        for word, at in positions.items():
            distance = min(at[0] - lowest, highest - at[-1])
            if distance > margin[word]:
                margin[word] = distance
                scores[word] = _aggregate(probabilities[at], aggregation)
    if scores is None:
        scores = np.zeros((word_count, 0))
    return scores, margin >= 0


# ---------------------------------------------------------------------------------------------
# 4. scores -> tags


def transitions(labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Which tags may follow which (shape [labels, labels], previous x next) and which may open a
    sentence (shape [labels]), under IOB2: I-X only after B-X or I-X. A type whose B- tag the
    model lacks (an IOB1-only label set) is left unconstrained, or it could never be predicted."""
    types = [label[2:] if label[:2] in ("B-", "I-") else None for label in labels]
    constrained = [label.startswith("I-") and f"B-{types[i]}" in labels for i, label in enumerate(labels)]
    allowed = np.ones((len(labels), len(labels)), dtype=bool)
    for j, label in enumerate(labels):
        if constrained[j]:
            allowed[:, j] = [types[i] == types[j] for i in range(len(labels))]
    return allowed, ~np.array(constrained, dtype=bool)


def viterbi(log_probabilities: np.ndarray, allowed: np.ndarray, start: np.ndarray) -> list[int]:
    """The label ids of the most probable sequence that only uses allowed transitions.

    log_probabilities: shape [words, labels]. Words are scored independently by the model, so the
    best path maximises the sum of its words' log-probabilities under the constraints.
    """
    if len(log_probabilities) == 0:
        return []
    barrier = np.where(allowed, 0.0, -np.inf)
    best = log_probabilities[0] + np.where(start, 0.0, -np.inf)
    back = np.zeros(log_probabilities.shape, dtype=int)
    for i in range(1, len(log_probabilities)):
        total = best[:, None] + barrier  # previous x next
        back[i] = total.argmax(axis=0)
        best = total.max(axis=0) + log_probabilities[i]
    path = [int(best.argmax())]
    for i in range(len(log_probabilities) - 1, 0, -1):
        path.append(int(back[i][path[-1]]))
    return path[::-1]


@dataclass
class Decoded:
    """One tag per word, and the model's probability of that tag (None for a word it never saw),
    tempered where the model's record has a calibration (`tempered`)."""

    tags: list[str]
    probabilities: list[float | None]


def decode(
    scores: np.ndarray, seen: np.ndarray, labels: list[str], use_viterbi: bool = True, temperature: float = 1.0
) -> Decoded:
    """Tags for words from their label probabilities (`word_scores`), and each tag's probability
    after `temperature` (`tempered`). The tags never depend on the temperature: only the scores do.

    Words without scores (cut off, or no sub-token at all) take no part in decoding. They are O,
    except inside an entity: a zero-width word between `New` (B-LOC) and `York` (I-LOC) continues
    it, so that the tags stay valid IOB2 and the entity stays whole.
    """
    tags, probabilities = [OUTSIDE] * len(seen), [None] * len(seen)
    visible = [int(i) for i in np.flatnonzero(seen)]
    if not visible:
        return Decoded(tags, probabilities)
    chosen = scores[visible]
    if use_viterbi:
        path = viterbi(np.log(np.clip(chosen, 1e-30, None)), *transitions(labels))
    else:
        path = [int(i) for i in chosen.argmax(axis=1)]
    reported = tempered(chosen, temperature)
    for row, (word, label) in enumerate(zip(visible, path)):
        tags[word], probabilities[word] = labels[label], float(reported[row, label])
    for before, after in zip(visible, visible[1:]):
        if after > before + 1 and tags[after].startswith("I-") and tags[before][2:] == tags[after][2:]:
            tags[before + 1 : after] = [tags[after]] * (after - before - 1)
    return Decoded(tags, probabilities)


def entity_types(labels: list[str]) -> list[str]:
    """The entity types an IOB2 label set names, sorted: O B-PER I-PER B-LOC -> LOC PER."""
    return sorted({label[2:] for label in labels if label[:2] in ("B-", "I-")})


def labels_of(id2label: dict) -> list[str]:
    """A model's label names in id order."""
    return [id2label[i] for i in sorted(id2label, key=int)]


def decode_logits(
    word_index: list[int], logits: np.ndarray, word_count: int, labels: list[str], use_viterbi: bool = True
) -> list[str]:
    """Tags for the `word_count` words of one encoded sentence, from the model's logits for its
    input (shape [sub-tokens or more, labels]; Trainer pads with -100 past the input)."""
    return decode(*sentence_scores(word_index, logits, word_count), labels, use_viterbi).tags


def sentence_scores(word_index: list[int], logits: np.ndarray, word_count: int) -> tuple[np.ndarray, np.ndarray]:
    """`word_scores` of one encoded sentence from the model's logits for its input (shape
    [sub-tokens or more, labels]; Trainer pads with -100 past the input)."""
    return word_scores([(word_index, softmax(np.asarray(logits)[: len(word_index)]))], word_count)


# ---------------------------------------------------------------------------------------------
# 5. tags -> entities


def spans(tags: list[str]) -> list[Span]:
    """Strict IOB2 entities in a tag sequence: B-X opens one, I-X continues it; an I-X that
    continues nothing is no entity (seqeval's strict mode; after Viterbi it cannot occur)."""
    found: list[Span] = []
    current: list | None = None
    for i, tag in enumerate(tags + [OUTSIDE]):
        continues = current is not None and tag == f"I-{current[0]}"
        if current is not None and not continues:
            found.append((current[0], current[1], i))
            current = None
        if tag.startswith("B-"):
            current = [tag[2:], i]
    return found


@dataclass(frozen=True)
class Entity:
    """A named entity in a text: its type, its exact text (`text[start:end]` of the input, character
    offsets), and its score (0-1). `as_dict()` is the record infer.py --json writes."""

    type: str
    text: str
    start: int
    end: int
    score: float

    def as_dict(self) -> dict:
        """The JSON record, under the token-classification pipeline's key names."""
        return {"entity_group": self.type, "word": self.text, "start": self.start, "end": self.end, "score": self.score}

    @classmethod
    def from_dict(cls, record: dict) -> "Entity":
        return cls(record["entity_group"], record["word"], record["start"], record["end"], record["score"])


def entity_score(probabilities: list[float | None]) -> float:
    """An entity's raw score: the mean probability of its words' tags (words never seen left out).
    bert_ner.calibration maps it to an estimate of the probability that the entity is right."""
    scored = [p for p in probabilities if p is not None]
    return sum(scored) / len(scored)


def entities(
    text: str,
    word_spans: list[tuple[int, int]],
    decoded: Decoded,
    calibrate: Callable[[float, str, list[str]], float] | None = None,
) -> list[dict]:
    """Entities with character offsets into `text`: the exact substring from the entity's first
    word to its last, and as score `entity_score`, mapped by `calibrate(score, type, words)` when
    the model has a calibration."""
    found = []
    for kind, first, end in spans(decoded.tags):
        start, stop = word_spans[first][0], word_spans[end - 1][1]
        score = entity_score(decoded.probabilities[first:end])
        if calibrate is not None:
            score = calibrate(score, kind, [text[s:e] for s, e in word_spans[first:end]])
        score = round(score, SCORE_DECIMALS)
        found.append({"entity_group": kind, "word": text[start:stop], "start": start, "end": stop, "score": score})
    return found


def tags_for(word_spans: list[tuple[int, int]], found: list[dict]) -> list[str]:
    """IOB2 tags for words at `word_spans` given entities with character offsets into the same
    text (how benchmarks score raw-text entities against gold words): a word belongs to the
    entity it overlaps."""
    tags = [OUTSIDE] * len(word_spans)
    for entity in found:
        covered = [i for i, (s, e) in enumerate(word_spans) if s < entity["end"] and e > entity["start"]]
        for k, i in enumerate(covered):
            tags[i] = ("B-" if k == 0 else "I-") + entity["entity_group"]
    return tags
