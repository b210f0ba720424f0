"""bert-ner: fine-tune BERT-style encoders for named-entity recognition, and tag text with them.

from bert_ner import Tagger
tagger = Tagger.load("bert-ner")
tagger("Barack Obama was born in Hawaii")
"""

from bert_ner.tagger import Tagger
from bert_ner.words import Entity

__all__ = ["Entity", "Tagger"]
