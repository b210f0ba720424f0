"""Fail in seconds, not minutes, when something must come from the Hugging Face Hub and cannot.

Without this, transformers and datasets retry an unreachable Hub for about a minute before
giving up with a message that does not say what to do.
"""

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from bert_ner.checkpoints import checkpoint_step, list_checkpoints
from bert_ner.errors import UserError
from bert_ner.outputs import MODEL_CONFIG_FILE

CONNECT_TIMEOUT_S = 5
OFFLINE_HINT = "set HF_HUB_OFFLINE=1 to use your Hugging Face cache, {local}, or try the offline demo: make demo"
LOCAL_DATA = "set data.dataset=null and data.train_file, data.validation_file, data.test_file to local files"


def local_instead(key: str) -> str:
    """How to use local files instead of the Hub for config key `key`."""
    return LOCAL_DATA if key.startswith("data.") else f"point {key} at a local directory"


def looks_local(name: str) -> bool:
    """Whether `name` is meant as a path rather than a Hub id ("org/name" or "name")."""
    return Path(name).exists() or name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def require(name: str, key: str) -> None:
    """Check that Hub id `name` (from config key `key`) can be fetched, or raise a UserError at once.

    With HF_HUB_OFFLINE set the loaders read the local cache, so there is nothing to check here.
    """
    if offline():
        return
    from huggingface_hub import constants

    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError:
        hint = OFFLINE_HINT.format(local=local_instead(key))
        raise UserError(
            f"{key}: '{name}' is no local directory, and the Hugging Face Hub, where it would be a "
            f"{'dataset' if key.startswith('data.') else 'model'} id, "
            f"is unreachable from here; check the path, or {hint}"
        ) from None


def load_error(name: str, key: str, error: Exception) -> UserError:
    """Turn a loader's failure for `name` into one line that says what to do next."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if offline() and not looks_local(name):
        return UserError(
            f"{key}: '{name}' is not in your Hugging Face cache, and HF_HUB_OFFLINE=1 forbids downloading it; run once "
            f"with network and without HF_HUB_OFFLINE to cache it, or {local_instead(key)} (docs/training.md: Without network)"
        )
    if type(error).__name__ == "SafetensorError":  # safetensors, imported only where weights load
        return UserError(
            f"{key}: the weights in '{name}' cannot be read ({reason}): the file is damaged or cut short; "
            "copy or download it again, or train again"
        )
    if os.path.isdir(name) and not key.startswith("data."):
        # A model directory needs config.json, the weights and the tokenizer's files.
        whole = f"point {key} at a directory train.py wrote, or one a Hugging Face model was saved to"
        if not (Path(name) / MODEL_CONFIG_FILE).is_file():
            return UserError(f"{key}: '{name}' has no {MODEL_CONFIG_FILE}, so it holds no model; {whole}")
        return UserError(f"{key}: could not load '{name}': {reason.rstrip('.')}; {whole}")
    if os.path.isdir(name):  # a directory of data files that datasets cannot read by itself
        return UserError(f"{key}: could not load '{name}': {reason.rstrip('.')}; for CoNLL or JSON lines files, {LOCAL_DATA}")
    return UserError(f"{key}: could not load '{name}' ({reason}); check the id, or the path if it is a local directory")


def check_model_dir(name: str, default: str, key: str = "--model") -> None:
    """Fail at once, before torch loads, when there is no model where the user points: a missing
    path (the default, a name that looks like a path, or `dir/name` where `dir` is a local
    directory), or a directory without config.json (pointing at its newest checkpoint if it has one)."""
    path = Path(name)
    if not path.exists():
        if name == default:
            raise UserError(f"no model in {name}/: run python train.py first (or make demo), or pass {key} DIR")
        if looks_local(name) or (path.parent != Path(".") and path.parent.is_dir()):
            raise UserError(f"{key} {name}: no such directory; check the path (a Hub id would not start with a local directory)")
        return  # a Hub id
    if path.is_dir() and not (path / MODEL_CONFIG_FILE).is_file():
        saved = sorted((n for n, files in list_checkpoints(path).items() if MODEL_CONFIG_FILE in files), key=checkpoint_step)
        hint = (
            f"; it holds a checkpoint of an unfinished run: {key} {path / saved[-1]}"
            if saved
            else f": run python train.py first, or pass {key} DIR"
        )
        raise UserError(f"no model in {name.rstrip('/')}/{hint}")
