"""ONNX: export a trained model, and run the export without torch or transformers.

Exporting needs torch (export.py). Running an export needs only onnxruntime, tokenizers and numpy
(requirements-onnx.txt), so that infer.py --backend onnx starts in about a second and deploys
without torch: the words, windows, context and entities are bert_ner.inference's Reader, the same
as the PyTorch backend's, and the tokenizer is the model's own tokenizer.json.
"""

import logging
import os
import shutil
import warnings
from pathlib import Path

from bert_ner.errors import UserError
from bert_ner.inference import CALL_COST, MODEL_INPUT_NAMES, Reader, padded
from bert_ner.outputs import BACKEND_FILES, MODEL_CONFIG_FILE, ONNX_DIR, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE
from bert_ner.record import read_record
from bert_ner.words import DEFAULT_AGGREGATION, labels_of

LOGITS = "logits"  # the export's output
RUN_REQUIREMENTS = "requirements-onnx.txt"  # running an export
EXPORT_REQUIREMENTS = "requirements-export.txt"  # making one


def require(module: str = "onnxruntime", requirements: str = RUN_REQUIREMENTS):
    """Import an optional ONNX package, or say in one line what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"ONNX support needs the {module} package: pip install -r {requirements}") from None


def onnx_path(model_dir: str | Path, backend: str) -> Path:
    return Path(model_dir) / ONNX_DIR / BACKEND_FILES[backend]


def export(model, tokenizer, path: Path) -> None:
    """Write `model` as ONNX with dynamic batch and sequence axes. Switches `model` to eager
    attention first (the same outputs as SDPA's, to 1e-5), and leaves it so."""
    import torch

    require("onnx", EXPORT_REQUIREMENTS)
    require("onnxscript", EXPORT_REQUIREMENTS)  # torch.onnx's exporter is built on it
    sample = tokenizer(["Anna Schmidt", "Reuters said so on Tuesday"], padding=True, return_tensors="pt")
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in sample]
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    # Eager attention exports as plain MatMul and Softmax. SDPA's export adds mask ops per layer
    # (IsNaN, Where, Slice, Concat) that ran slower under ONNX Runtime (docs/speed.md).
    model.set_attn_implementation("eager")
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # optional-operator notices (torchvision)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the exporter's own deprecations, not ours to fix
        # Inputs share their batch and sequence axes by design; the exporter remarks on it.
        warnings.filterwarnings("ignore", message=".*axis name.*will not be used", category=UserWarning)
        torch.onnx.export(
            model,
            (),
            str(path),
            kwargs={name: sample[name] for name in names},
            input_names=names,
            output_names=[LOGITS],
            dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
            dynamo=True,
            external_data=False,  # one self-contained file, easy to copy and deploy
            verbose=False,
        )


def quantize(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of the MatMul weights (activations are quantized on the fly):
    smaller and faster on CPU. One scale per output channel, not per tensor, which cost test F1;
    embeddings stay float, which is faster (docs/speed.md)."""
    require("onnx", EXPORT_REQUIREMENTS)
    quantization = require("onnxruntime.quantization")
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # its advice to pre-process is for static quantization
    try:
        quantization.quantize_dynamic(
            str(source), str(target), weight_type=quantization.QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]
        )
    finally:
        root.setLevel(level)


STAGING_DIR = ".partial"  # inside onnx/: the exports while they are written


def write_exports(model, tokenizer, model_dir: Path) -> tuple[Path, Path]:
    """The fp32 and int8 exports of `model` in model_dir/onnx/, both or neither: written into a
    staging directory there, then each moved into place with a rename, so an export that fails
    midway (a full or read-only disk) leaves the previous export as it was. Raises OSError where
    onnx/ cannot be written; leaves no staging directory behind."""
    fp32, int8 = onnx_path(model_dir, "onnx"), onnx_path(model_dir, "onnx-int8")
    staging = fp32.parent / STAGING_DIR
    fp32.parent.mkdir(exist_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        export(model, tokenizer, staging / fp32.name)
        quantize(staging / fp32.name, staging / int8.name)
        for path in sorted(staging.iterdir()):  # with any external-data file, whose name the export refers to
            os.replace(path, fp32.parent / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return fp32, int8


# ONNX Runtime's graph fusions that made the MiniLM export slower on CPU: fused SkipLayerNormalization
# took more of the int8 run's kernel time than Add and LayerNormalization apart (docs/speed.md).
SLOWER_FUSIONS = ["SkipLayerNormFusion"]


def session(path: Path, threads: int | None = None, options=None):
    """An ONNX Runtime CPU session for the export at `path`; `options` (SessionOptions) for profiling."""
    onnxruntime = require()
    options = onnxruntime.SessionOptions() if options is None else options
    if threads:
        options.intra_op_num_threads = threads
    state = onnxruntime.capi.onnxruntime_pybind11_state  # where ONNX Runtime's load errors live
    try:
        return onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=SLOWER_FUSIONS
        )
    except (state.InvalidProtobuf, state.InvalidGraph, state.Fail) as error:
        reason = str(error).strip().splitlines()[0]
        raise UserError(
            f"{path}: ONNX Runtime cannot load it ({reason}); the file is damaged, cut short or made for another "
            f"onnxruntime: export again (python export.py --model {path.parent.parent})"
        ) from None


class FastTokenizer:
    """The calls bert_ner.words and bert_ner.context make of a transformers fast tokenizer, answered by the
    same tokenizer.json through the `tokenizers` package alone (what transformers' fast
    tokenizers run underneath): the ONNX backends start without importing torch or transformers.
    Windows of a long text come out as transformers makes them: each encoding, then its overflow."""

    padding_side = "right"

    def __init__(self, path: Path):
        tokenizers = require("tokenizers")
        try:
            self.backend = tokenizers.Tokenizer.from_file(str(path))
        except Exception as error:  # the tokenizers package raises plain Exception for a missing or broken file
            raise unreadable(path, error) from None
        self.backend.no_padding()
        self.backend.no_truncation()

    def __call__(
        self,
        texts,
        is_split_into_words: bool = False,
        truncation: bool = False,
        max_length: int | None = None,
        stride: int = 0,
        return_overflowing_tokens: bool = False,
        add_special_tokens: bool = True,
        verbose: bool = True,  # transformers' over-length warning; `tokenizers` has none
    ):
        if truncation and max_length is not None:
            self.backend.enable_truncation(max_length, stride=stride)
        else:
            self.backend.no_truncation()
        single = isinstance(texts, str)
        encodings = self.backend.encode_batch(
            [texts] if single else texts, is_pretokenized=is_split_into_words, add_special_tokens=add_special_tokens
        )
        if return_overflowing_tokens:
            encodings = [part for encoding in encodings for part in (encoding, *encoding.overflowing)]
        return FastEncoding(encodings[0] if single else encodings, single)


class FastEncoding(dict):
    """Input name -> the ids of each encoding (of the one encoding for a single text), with
    `word_ids(i)` as transformers' BatchEncoding has it."""

    def __init__(self, encodings, single: bool):
        self.encodings = [encodings] if single else encodings
        fields = {"input_ids": "ids", "token_type_ids": "type_ids", "attention_mask": "attention_mask"}  # tokenizers' names
        columns = {name: fields[name] for name in MODEL_INPUT_NAMES}
        rows = {name: [getattr(encoding, field) for encoding in self.encodings] for name, field in columns.items()}
        super().__init__({name: values[0] for name, values in rows.items()} if single else rows)

    def word_ids(self, index: int = 0) -> list[int | None]:
        return self.encodings[index].word_ids


def read_json(path: Path) -> dict:
    """A model directory's JSON file; UserError when it is missing or not JSON."""
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise unreadable(path, error) from None


def unreadable(path: Path, error: Exception) -> UserError:
    """A model directory's file that is missing or damaged, and what to do."""
    return UserError(f"{path}: cannot read it ({error}); copy the model directory again, or train again")


class OnnxModel:
    """A model's ONNX export with what reads text for it: `reader` (bert_ner.inference.Reader, as the
    model's record says) and `logits`, the one model call, with onnxruntime, tokenizers and numpy only."""

    call_cost = CALL_COST

    def __init__(self, model_dir: str, backend: str, threads: int | None = None, aggregation: str = DEFAULT_AGGREGATION):
        path = onnx_path(model_dir, backend)
        if not path.is_file():
            raise UserError(f"no ONNX model at {path}: run python export.py --model {model_dir} first")
        self.session = session(path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        tokenizer = FastTokenizer(Path(model_dir) / TOKENIZER_FILE)
        config = read_json(Path(model_dir) / MODEL_CONFIG_FILE)
        limits = [
            config.get("max_position_embeddings"),
            read_json(Path(model_dir) / TOKENIZER_CONFIG_FILE).get("model_max_length"),
        ]
        limit = min(limit for limit in limits if limit)
        self.reader = Reader(tokenizer, labels_of(config["id2label"]), limit, read_record(model_dir), aggregation)

    def logits(self, inputs: list[dict[str, list[int]]]):
        """One model call: logits [inputs, longest, labels]."""
        return self.session.run([LOGITS], padded(inputs, self.input_names))[0]
