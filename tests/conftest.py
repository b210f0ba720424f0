"""Shared test helpers. Tests run offline, on CPU, from any directory."""

import os
from pathlib import Path

import pytest

from bert_ner.config import load_config
from bert_ner.errors import UserError

REPO = Path(__file__).resolve().parent.parent
SCRATCH = str(REPO / "configs/scratch.yaml")  # a tiny BERT trained from scratch on the demo sample
# One quick epoch on a slice of the sample: for tests of what a run does, not of how well it learns.
SENTENCE = "Anna Schmidt said on Tuesday that Reuters would open a new office in Germany ."
QUICK = ["training.num_train_epochs=1", "data.max_train_samples=64", "data.max_eval_samples=16", "data.max_test_samples=16"]

# Tests never touch the network: a Hub lookup must fail at once, not retry.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    """Config paths are relative to where train.py runs: the repository root."""
    monkeypatch.chdir(REPO)


def wordpiece(words: list[str]):
    """A tiny BERT fast tokenizer whose vocabulary is exactly `words` plus the special tokens."""
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    return BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=False)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The offline demo, trained once per test session through train.py's main(); its output dir."""
    from train import main

    output_dir = tmp_path_factory.mktemp("demo") / "bert-ner"
    os.chdir(REPO)
    assert main(["--config", SCRATCH, f"training.output_dir={output_dir}"]) == 0
    return output_dir


# Label Studio's "Named Entity Recognition" template
NER_CONFIG = """<View>
  <Labels name="label" toName="text">
    <Label value="Person" background="red"/>
    <Label value="Organization" background="darkorange"/>
    <Label value="Location" background="orange"/>
    <Label value="Miscellaneous" background="green"/>
  </Labels>
  <Text name="text" value="$text"/>
</View>"""


def config_error(tmp_path, text: str, overrides=()) -> str:
    """The one-line error load_config gives for a config file holding `text` and these overrides."""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        load_config(path, list(overrides))
    return str(error.value)
