"""The course's standard figures: loss curves, method comparison bars, confusion matrix, memory bars.

Each function returns a matplotlib Figure; notebooks show it and save it with `run.savefig`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def _plt():
    # Imported lazily: matplotlib picks the inline backend in Jupyter and Agg on a headless machine.
    import matplotlib.pyplot as plt

    return plt


def loss_curves(histories: Mapping[str, Sequence[tuple[int, float]]], title: str = "Training loss",
                ylabel: str = "loss"):
    """One line per run: {name: [(step, loss), ...]}."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, points in histories.items():
        if points:
            steps, losses = zip(*points)
            ax.plot(steps, losses, marker="o", markersize=3, label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(histories) > 1:
        ax.legend()
    fig.tight_layout()
    return fig


def bars(values: Mapping[str, float], title: str, ylabel: str, fmt: str = "{:.2f}", log: bool = False,
         ref: float | None = None, ref_label: str = ""):
    """A bar per entry, each labelled with its value; optional horizontal reference line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(values)), 3.5))
    names, vals = list(values), list(values.values())
    rects = ax.bar(names, vals, color=[f"C{i}" for i in range(len(vals))])
    for r, v in zip(rects, vals):
        ax.annotate(fmt.format(v), (r.get_x() + r.get_width() / 2, r.get_height()),
                    ha="center", va="bottom", fontsize=9)
    if ref is not None:
        ax.axhline(ref, color="grey", linestyle="--", linewidth=1, label=ref_label or None)
        if ref_label:
            ax.legend()
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=20 if len(values) > 3 else 0)
    fig.tight_layout()
    return fig


def grouped_bars(table: Mapping[str, Mapping[str, float]], title: str, ylabel: str, fmt: str = "{:.2f}"):
    """Groups of bars: {group: {series: value}}, e.g. {"ROUGE-1": {"zero-shot": .2, "LoRA": .3}}."""
    plt = _plt()
    groups = list(table)
    series = list(dict.fromkeys(s for g in groups for s in table[g]))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(groups)), 3.5))
    for i, s in enumerate(series):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        vals = [table[g].get(s, 0.0) for g in groups]
        rects = ax.bar(xs, vals, width, label=s)
        for r, v in zip(rects, vals):
            ax.annotate(fmt.format(v), (r.get_x() + r.get_width() / 2, r.get_height()),
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str = "Confusion matrix"):
    """Rows: true class, columns: predicted class, each cell annotated with its count."""
    plt = _plt()
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.1 * n + 2.5, 1.0 * n + 1.8))
    im = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=30, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = max(max(r) for r in matrix) or 1
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(matrix[i][j]), ha="center", va="center",
                    color="white" if matrix[i][j] > top / 2 else "black")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def memory_bars(estimates_gb: Mapping[str, float], budget_gb: float | None = None, title: str = "Memory",
                budget_label: str = "available"):
    """Memory per configuration in GB, with the hardware's budget as a line."""
    return bars(estimates_gb, title=title, ylabel="GB", fmt="{:.1f}", ref=budget_gb, ref_label=budget_label)
