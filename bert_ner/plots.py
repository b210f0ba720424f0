"""PNG charts of a run: learning curves, per-type scores, and the entity-type confusion matrix.

Drawn with matplotlib's file-only backend (no display needed) from what the run wrote, so they
can be drawn again later from an output directory alone.
"""

from pathlib import Path

from bert_ner.analysis import MISSED, SPURIOUS, WRONG_BOUNDARY

DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curves(rows: list[dict], path: Path) -> None:
    """Training loss per logging step, and validation loss and F1 per evaluation, against epochs."""
    plt = _pyplot()
    train = [(r["epoch"], r["loss"]) for r in rows if r.get("loss") is not None]
    evals = [(r["epoch"], r["eval_loss"], r.get("eval_f1")) for r in rows if r.get("eval_loss") is not None]
    figure, (losses, f1) = plt.subplots(1, 2, figsize=(10, 3.8))
    if train:
        losses.plot(*zip(*train), label="training loss", color="#4c72b0")
    if evals:
        epochs, eval_loss, eval_f1 = zip(*evals)
        losses.plot(epochs, eval_loss, "o-", label="validation loss", color="#dd8452")
        f1.plot(epochs, [v * 100 for v in eval_f1 if v is not None], "o-", color="#55a868")
        for x, y in zip(epochs, eval_f1):
            if y is not None:
                f1.annotate(f"{y * 100:.2f}", (x, y * 100), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    losses.set(xlabel="epoch", ylabel="loss", title="Loss")
    losses.legend()
    f1.set(xlabel="epoch", ylabel="F1 (%)", title="Validation F1 (entity level)")
    for axes in (losses, f1):
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def per_type_scores(per_type: dict[str, dict], path: Path, split: str = "test") -> None:
    """Precision, recall and F1 bars for each entity type."""
    plt = _pyplot()
    types = sorted(per_type)
    measures = ("precision", "recall", "f1")
    figure, axes = plt.subplots(figsize=(max(5, 1.6 * len(types) + 2), 3.8))
    width = 0.8 / len(measures)
    for k, measure in enumerate(measures):
        xs = [i + (k - 1) * width for i in range(len(types))]
        values = [per_type[t][measure] * 100 for t in types]
        bars = axes.bar(xs, values, width, label=measure)
        axes.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    axes.set_xticks(range(len(types)), [f"{t}\n({per_type[t]['support']})" for t in types])
    axes.set(ylabel="%", ylim=(0, 105), title=f"{split.capitalize()} scores per entity type (support in brackets)")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def confusion_matrix(counts: dict[tuple[str, str], int], path: Path) -> None:
    """Gold entity type (rows, then spurious) against the type of the overlapping prediction
    (columns, then wrong boundary and missed). The diagonal holds exact matches only: an entity
    found with its type but other boundaries counts under wrong boundary."""
    plt = _pyplot()
    types = sorted({t for pair in counts for t in pair} - {MISSED, SPURIOUS, WRONG_BOUNDARY})
    rows, columns = types + [SPURIOUS], types + [WRONG_BOUNDARY, MISSED]
    grid = [[counts.get((r, c), 0) for c in columns] for r in rows]
    figure, axes = plt.subplots(figsize=(1.1 * len(columns) + 2.5, 0.9 * len(rows) + 1.8))
    axes.imshow([[min(v, 1) * (v**0.5) for v in row] for row in grid], cmap="Blues")
    peak = max(max(row) for row in grid) or 1
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if rows[i] == SPURIOUS and columns[j] in (WRONG_BOUNDARY, MISSED):
                continue  # no gold entity: nothing can be counted here
            color = "white" if value**0.5 > 0.6 * peak**0.5 else "black"
            axes.text(j, i, str(value), ha="center", va="center", color=color, fontsize=9)
    axes.set_xticks(range(len(columns)), columns)
    axes.set_yticks(range(len(rows)), rows)
    axes.set(xlabel="predicted type", ylabel="gold type", title="Entity types, test set")
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def reliability_diagram(measured: dict, path: Path, split: str = "test") -> None:
    """The share of entities right against their mean score, per score bin, before and after
    calibration (bert_ner.calibration.measure): on the diagonal, a score means what it says."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5.2, 4.6))
    axes.plot([0, 1], [0, 1], "--", color="#999999", label="perfect calibration")
    for stage, color, name in (("before", "#dd8452", "model's scores"), ("after", "#4c72b0", "calibrated")):
        bins = [b for b in measured[stage]["bins"] if b["entities"]]
        axes.plot(
            [b["mean_score"] for b in bins],
            [b["accuracy"] for b in bins],
            "o-",
            color=color,
            label=f"{name} (ECE {measured[stage]['ece']:.3f})",
        )
    axes.set(
        xlabel="entity score (mean per bin)",
        ylabel="share of entities right",
        xlim=(0, 1),
        ylim=(0, 1.02),
        title=f"Reliability of entity scores, {split} set",
    )
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
