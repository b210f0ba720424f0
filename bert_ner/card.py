"""The model card: output_dir/README.md in the Hugging Face form (YAML metadata, then prose), from
the template templates/model_card.md."""

from pathlib import Path
from string import Template
from typing import Any

import yaml

from bert_ner.hub import looks_local
from bert_ner.outputs import ERRORS_MD, RESOLVED_CONFIG_FILE
from bert_ner.record import ModelRecord
from bert_ner.words import entity_types, shown_score

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
    """Where the training data came from; local paths stay on the machine that trained."""
    if data.get("dataset"):
        return f"the Hugging Face dataset `{data['dataset']}`"
    return "local files"


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


TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"


def reading(record: ModelRecord) -> str:
    """How the model reads text, in words, from its record."""
    limit = f"at most {record.max_length} sub-tokens" if record.max_length else "the encoder's own length limit"
    context = (
        f"each sentence between up to {record.context_tokens} sub-tokens of its neighbours' words on each side "
        "(document context: pass `documents=True` to `Tagger.pipe`, or `--documents` to infer.py, for the lines of one "
        "document)"
        if record.context_tokens
        else "each sentence alone"
    )
    decoding = "a Viterbi pass that allows only valid IOB2" if record.viterbi else "each word's likeliest tag"
    return (
        f"sentences split by pySBD ({record.language}) and words by NLTK's Treebank rules ({record.word_rules}); "
        f"{context}; inputs of {limit}, a longer sentence in overlapping windows; tags decoded with {decoding}." + scoring(record)
    )


def scoring(record: ModelRecord) -> str:
    """What an entity's score is, in words, from the record's calibration ("" without one)."""
    calibration = record.calibration
    if calibration is None:
        return ""
    maps = (
        "an isotonic map" if calibration.known_points is None else "isotonic maps for entities known from training and new ones"
    )
    said = (
        f" Entity scores are calibrated on validation (temperature {calibration.temperature:g}, then {maps}): "
        "an estimate of the probability that the entity is right."
    )
    if calibration.unreached_precision is not None:
        said += (
            f" No score reached precision {calibration.unreached_precision:g} on validation, so no threshold was "
            "recorded: every entity is kept."
        )
    if calibration.threshold == 0:
        said += f" Validation's entities reach precision {calibration.min_precision:g} without a threshold, so none is dropped."
    elif calibration.threshold is not None:
        entities = "entities" if calibration.known_points is None else "known and new entities each"
        said += (
            f" Entities scored below {shown_score(calibration.threshold)} are dropped unless `min_score` "
            f"(`--min-score`, `--min-precision`) says otherwise: the lowest score at which validation's {entities} "
            f"reach precision {calibration.min_precision:g}, by the rule of succession (what it keeps: Evaluation)."
        )
    return said


def thresholded(metrics: dict[str, Any]) -> str:
    """The Evaluation's line on what the recorded threshold keeps (metrics.json's `calibration`),
    or "" when there is none, or it drops nothing."""
    kept = {}
    for split, measured in metrics.get("calibration", {}).items():
        at = measured.get("threshold") if isinstance(measured, dict) else None
        if at and at["threshold"] and at["precision"] is not None:
            kept[split] = at
    if not kept:
        return ""
    threshold = shown_score(next(iter(kept.values()))["threshold"])
    said = ", ".join(
        f"precision {100 * at['precision']:.2f} and recall {100 * at['recall']:.2f} on {split}" for split, at in kept.items()
    )
    return (
        f"\nThe table counts every entity. Dropping those scored below the recorded threshold, {threshold}, "
        f"as inference does, gives {said}.\n"
    )


def model_card(
    resolved: dict[str, Any], metrics: dict[str, Any], labels: list[str], name: str, path: str, record: ModelRecord
) -> str:
    """README.md for an output directory, from its resolved config, metrics, label names and record;
    `path` is where the model is loaded from, as the usage snippets write it."""
    base = base_model(resolved)
    if resolved["model"].get("scratch") is not None:
        origin = "A named-entity recognizer: a small BERT trained from scratch"
    else:
        source = f"[`{base}`](https://huggingface.co/{base})" if base else "a local encoder"
        origin = f"A named-entity recognizer fine-tuned from {source}"
    training = resolved["training"]
    time = ""
    if "training" in metrics:
        time = f"\nTraining took {metrics['training']['steps']} steps and {metrics['training']['runtime_s']:.0f} s.\n"
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        metadata=yaml.safe_dump(metadata(resolved, metrics, name), sort_keys=False).rstrip(),
        name=name,
        origin=origin,
        data=data_description(resolved["data"]),
        types=", ".join(entity_types(labels)),
        label_count=len(labels),
        labels=" ".join(labels),
        path=path,
        reading=reading(record),
        scores="\n".join(scores_table(metrics)),
        thresholded=thresholded(metrics),
        hyperparameters="\n".join(f"| {key} | {training[key]} |" for key in SHOWN_TRAINING_KEYS if key in training),
        training_time=time,
        run_config=RESOLVED_CONFIG_FILE,
        errors_file=ERRORS_MD,
        max_length=record.max_length or "the encoder's maximum of",
    )
