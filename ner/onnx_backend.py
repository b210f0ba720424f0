"""ONNX: export a trained model, and run the export inside the transformers pipeline.

The pipeline keeps doing everything but the forward pass (tokenization, long-text windows, word
aggregation, offsets), so the ONNX backends share all of that with PyTorch instead of copying it.
onnx, onnxscript and onnxruntime are optional: requirements-onnx.txt.
"""

import logging
import warnings
from pathlib import Path

from ner.errors import UserError

ONNX_DIR = "onnx"
BACKEND_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}
INSTALL_HINT = "pip install -r requirements-onnx.txt"


def require(module: str = "onnxruntime"):
    """Import an optional ONNX package, or say in one line what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"ONNX support needs the {module} package: {INSTALL_HINT}") from None


def onnx_path(model_dir: str | Path, backend: str) -> Path:
    return Path(model_dir) / ONNX_DIR / BACKEND_FILES[backend]


def export(model, tokenizer, path: Path) -> list[str]:
    """Write `model` as ONNX with dynamic batch and sequence axes; return its input names."""
    import torch

    require("onnx")
    require("onnxscript")  # torch.onnx's exporter is built on it
    sample = tokenizer(["Anna Schmidt", "Reuters said so on Tuesday"], padding=True, return_tensors="pt")
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in sample]
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
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
            output_names=["logits"],
            dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
            dynamo=True,
            external_data=False,  # one self-contained file, easy to copy and deploy
            verbose=False,
        )
    return names


def quantize(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of the MatMul weights (activations are quantized on the fly):
    smaller and faster on CPU. One scale per output channel, not per tensor, which cost 1.2 test F1
    on CoNLL-2003 with MiniLM; embeddings stay float, which is faster here (README, Results)."""
    require("onnx")
    quantization = require("onnxruntime.quantization")
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # its advice to pre-process is for static quantization
    try:
        quantization.quantize_dynamic(
            str(source), str(target), weight_type=quantization.QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]
        )
    finally:
        root.setLevel(level)


def session(path: Path, threads: int | None = None):
    onnxruntime = require()
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxTokenClassifier:
    """Stands in for the PyTorch model inside a token-classification pipeline: it has the
    checkpoint's `config` and a CPU `device`, and returns logits from an ONNX Runtime session."""

    def __init__(self, path: Path, config, threads: int | None = None):
        import torch

        self.config = config
        self.device = torch.device("cpu")
        self.session = session(path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, **inputs):
        import numpy as np
        import torch
        from transformers.modeling_outputs import TokenClassifierOutput

        feeds = {name: inputs[name].numpy().astype(np.int64) for name in self.input_names}
        return TokenClassifierOutput(logits=torch.from_numpy(self.session.run(["logits"], feeds)[0]))


def load_onnx_model(model_dir: str, backend: str, config, threads: int | None = None) -> OnnxTokenClassifier:
    """The exported model of `backend` ("onnx" or "onnx-int8") in `model_dir`."""
    path = onnx_path(model_dir, backend)
    if not path.is_file():
        raise UserError(f"no ONNX model at {path}: run python export.py --model {model_dir} first")
    return OnnxTokenClassifier(path, config, threads)
