"""What the hardware decides: mixed precision on a GPU, several CPU processes joined together.
These are choices about the machine a run finds, not part of the config schema."""

import os
from typing import Any

from bert_ner.errors import UserError


def add_hardware_defaults(training: dict[str, Any]) -> None:
    """Mixed precision on a GPU, and gloo between CPU processes, unless the config chose."""
    import torch

    cuda = torch.cuda.is_available()
    if problems := precision_problems(training, cuda):
        raise UserError("\n".join(problems))
    training |= precision_defaults(training, cuda, cuda and torch.cuda.is_bf16_supported())
    training |= cpu_processes_defaults(training, cuda, int(os.environ.get("WORLD_SIZE", "1")))


def precision_defaults(training: dict[str, Any], cuda: bool, bf16_supported: bool) -> dict[str, Any]:
    """Mixed precision on a GPU unless the config chose: bf16 where the GPU has it, else fp16.
    Nothing on CPU, where half precision is slower for BERT-sized models."""
    if not cuda or "bf16" in training or "fp16" in training:
        return {}
    return {"bf16": True} if bf16_supported else {"fp16": True}


def cpu_processes_defaults(training: dict[str, Any], cuda: bool, world_size: int) -> dict[str, Any]:
    """Several processes without a GPU (torchrun on CPU) train together only with use_cpu, which
    makes accelerate join them over gloo; without it each process trains alone."""
    if cuda or world_size < 2 or "use_cpu" in training:
        return {}
    return {"use_cpu": True}


def precision_problems(training: dict[str, Any], cuda: bool) -> list[str]:
    """fp16 without a GPU: accelerate finds no fp16 autocast on CPU and trains in full precision,
    silently; bf16 does work on CPU (with use_cpu: true, transformers' own rule)."""
    if training.get("fp16") and not cuda:
        return [
            "training.fp16: without a GPU, transformers trains in full precision anyway; "
            "unset it, or use bf16: true with use_cpu: true"
        ]
    return []
