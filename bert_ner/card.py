"""The model card: output_dir/README.md in the Hugging Face form (YAML metadata, then prose)."""

from typing import Any

import yaml

from ner.hub import looks_local
from ner.outputs import ERRORS_MD, RESOLVED_CONFIG_FILE
from ner.words import entity_types

SPLIT_NAMES = {"validation": "Validation", "test": "Test"}
MEASURE_NAMES = {"precision": "precision", "recall": "recall", "f1": "F1"}
# Training keys worth a reader's attention; the whole resolved config is in RESOLVED_CONFIG_FILE.
SHOWN_TRAINING_KEYS = (
    "num_train_epochs",
    "learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "warmup_steps",
    "weight_decay",
    "lr_scheduler_type",
    "train_sampling_strategy",
    "seed",
    "bf16",
    "fp16",
)


def base_model(resolved: dict[str, Any]) -> str | None:
    """The Hub id the model was fine-tuned from, when it was one."""
    model = resolved["model"]
    if model.get("scratch") is not None or not model.get("name_or_path") or looks_local(model["name_or_path"]):
        return None
    return model["name_or_path"]


def data_description(data: dict[str, Any]) -> str:
    if data.get("dataset"):
        return f"the Hugging Face dataset `{data['dataset']}`"
    files = [f"`{data[key]}`" for key in ("train_file", "validation_file", "test_file") if data.get(key)]
    return "local files " + ", ".join(files)


def metadata(resolved: dict[str, Any], metrics: dict[str, Any], name: str) -> dict[str, Any]:
    card: dict[str, Any] = {"library_name": "transformers", "pipeline_tag": "token-classification", "tags": ["ner", "bert-ner"]}
    if base := base_model(resolved):
        card["base_model"] = base
    if dataset := resolved["data"].get("dataset"):
        card["datasets"] = [dataset]
    results = [
        {
            "type": measure,
            "value": round(metrics[split][measure], 4),
            "name": f"{SPLIT_NAMES[split]} {MEASURE_NAMES[measure]} (entity level, strict)",
        }
        for split in SPLIT_NAMES
        if split in metrics
        for measure in ("precision", "recall", "f1")
    ]
    if results:
        dataset = resolved["data"].get("dataset") or "local files"
        card["model-index"] = [
            {
                "name": name,
                "results": [
                    {
                        "task": {"type": "token-classification", "name": "Named-entity recognition"},
                        "dataset": {"name": dataset, "type": dataset},
                        "metrics": results,
                    }
                ],
            }
        ]
    return card


def scores_table(metrics: dict[str, Any]) -> list[str]:
    splits = [s for s in SPLIT_NAMES if s in metrics]
    lines = ["| | " + " | ".join(f"{SPLIT_NAMES[s]} P | {SPLIT_NAMES[s]} R | {SPLIT_NAMES[s]} F1" for s in splits) + " |"]
    lines.append("|---" * (1 + 3 * len(splits)) + "|")
    types = sorted({t for s in splits for t in metrics[s]["per_type"]})
    for row, pick in [("**overall**", lambda s: metrics[s])] + [(t, lambda s, t=t: metrics[s]["per_type"].get(t)) for t in types]:
        cells = []
        for split in splits:
            values = pick(split)
            cells += [f"{values[m] * 100:.2f}" if values else "-" for m in ("precision", "recall", "f1")]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines


def model_card(resolved: dict[str, Any], metrics: dict[str, Any], labels: list[str], name: str) -> str:
    """README.md for an output directory, from its resolved config, metrics and label names."""
    base = base_model(resolved)
    if resolved["model"].get("scratch") is not None:
        origin = "A named-entity recognizer: a small BERT trained from scratch"
    else:
        source = f"[`{base}`](https://huggingface.co/{base})" if base else f"`{resolved['model']['name_or_path']}`"
        origin = f"A named-entity recognizer fine-tuned from {source}"
    training = resolved["training"]
    types = entity_types(labels)
    lines = ["---", yaml.safe_dump(metadata(resolved, metrics, name), sort_keys=False).rstrip(), "---", ""]
    lines += [
        f"# {name}",
        "",
        f"{origin} with bert-ner on "
        f"{data_description(resolved['data'])}. It tags {', '.join(types)} entities with {len(labels)} IOB2 labels "
        f"({' '.join(labels)}).",
        "",
        "## How to use",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        f'ner = pipeline("token-classification", model="{name}", aggregation_strategy="first")',
        'print(ner("Barack Obama was born in Hawaii"))',
        "```",
        "",
        f'or, with bert-ner: `python infer.py --model {name} "Barack Obama was born in Hawaii"`.',
        "",
        "## Evaluation",
        "",
        "Entity-level precision, recall and F1 (%) with seqeval in strict IOB2 mode: an entity counts only when its "
        "type and both boundaries are right.",
        "",
        *scores_table(metrics),
        "",
        "## Training",
        "",
        "| hyperparameter | value |",
        "|---|---|",
        *[f"| {key} | {training[key]} |" for key in SHOWN_TRAINING_KEYS if key in training],
    ]
    if "training" in metrics:
        lines += ["", f"Training took {metrics['training']['steps']} steps and {metrics['training']['runtime_s']:.0f} s."]
    lines += [
        f"The full configuration of the run is in `{RESOLVED_CONFIG_FILE}`; learning curves, per-type scores, the "
        f"confusion matrix and every test error (`{ERRORS_MD}`) are next to it.",
        "",
        "## Intended use and limitations",
        "",
        "Finding names of the types above in text like the training data. Scores on other domains (social media, "
        "clinical notes, other languages) will be lower; check them on your own labelled sample before relying on it. "
        "The model labels whole words from their first sub-token and sees at most the encoder's maximum length at once "
        "(infer.py covers longer texts with overlapping windows). It reflects the biases of its training data: whose names, "
        "which places and which years it covers.",
    ]
    return "\n".join(lines) + "\n"
