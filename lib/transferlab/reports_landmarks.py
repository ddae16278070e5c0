"""Report pieces of the landmark tables: predicted vs true landmarks on a few test images.

A landmark run keeps, in its ``metrics.json``, the predicted coordinates of the first test images it evaluated
(``examples_at_best_val``: the selected weights; :meth:`transferlab.tasks.landmarks.Landmarks.evaluate`). The test
images are read back exactly as the run saw them — the dataset (embedded for the mini proxy), the run's
``splits.json`` and the dataset's test preset (the face crop for 300W/WFLW/COFW) — so nothing is re-trained or
re-predicted here. Like :mod:`transferlab.reports`, everything comes from the result files.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from transferlab.data import TRANSFORMS, DatasetNotFoundError, load
from transferlab.data.pipeline import eval_batches
from transferlab.data.splits import SplitIndices
from transferlab.results import read_json


def test_images(run_dir: str | Path, count: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The first ``count`` test inputs of a run as displayable images [n, H, W, C] in [0, 1], and their true
    landmarks [n, L, 2]; None when the dataset is not under the run's data root."""
    run_dir = Path(run_dir)
    config = read_json(run_dir / "metrics.json")["config"]
    try:
        source = load(config["dataset"], config.get("data_root", "data"))
    except DatasetNotFoundError:
        return None
    splits = SplitIndices.from_json(read_json(run_dir / "splits.json"))
    name = source.preset if config.get("preset", "auto") == "auto" else config["preset"]
    preset = TRANSFORMS.get(name)
    x, y = next(eval_batches(source.test, splits.test[:count], preset, count, "cpu"))
    mean = torch.tensor(preset.mean).view(1, -1, 1, 1)
    std = torch.tensor(preset.std).view(1, -1, 1, 1)
    images = (x.float() * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    return images, y.numpy()


def plot_predictions(runs: pd.DataFrame, count: int = 6, title: str = ""):
    """One row per run (e.g. each method at one seed), ``count`` test images per row: true landmarks (green
    circles), predictions at the best-validation step (red crosses) and the error between them (lines); each
    panel is titled with the image's NME. Returns the figure (None if no run's images can be read)."""
    from transferlab.tasks import landmark_metrics as lm

    rows = []
    for _, run in runs.iterrows():
        metrics = read_json(Path(run["run_dir"]) / "metrics.json")["metrics"]
        examples = metrics.get("examples_at_best_val") or []
        shown = test_images(run["run_dir"], min(count, len(examples)))
        if shown is not None and examples:
            norm = metrics.get("normaliser", "bbox_diagonal")
            rows.append((run, np.asarray(examples[: len(shown[0])], dtype=np.float32), *shown, norm))
    if not rows:
        return None
    n = max(len(r[2]) for r in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.9 * n, 2.1 * len(rows)), squeeze=False)
    for (run, pred, images, truth, norm), ax_row in zip(rows, axes):
        spec = norm if isinstance(norm, str) else tuple(norm)
        errors = lm.nme(torch.from_numpy(pred), torch.from_numpy(truth), spec).numpy()
        for i, ax in enumerate(ax_row):
            ax.axis("off")
            if i >= len(images):
                continue
            ax.imshow(images[i].squeeze(-1) if images[i].shape[-1] == 1 else images[i], cmap="gray")
            for (px, py), (tx, ty) in zip(pred[i], truth[i]):
                ax.plot([px, tx], [py, ty], color="yellow", linewidth=0.6)
            ax.scatter(
                truth[i][:, 0], truth[i][:, 1], s=9, facecolors="none", edgecolors="lime", linewidths=0.8
            )
            ax.scatter(pred[i][:, 0], pred[i][:, 1], s=9, c="red", marker="x", linewidths=0.8)
            ax.set_title(f"NME {100 * errors[i]:.1f} %", fontsize=7)
        label = str(run.get("variant", run["method"]))
        if run["method"] == "finetune":  # which hub model it starts from
            label += f"\n{str(run['pretrained']).removeprefix('mini:')}"
        ax_row[0].text(-0.08, 0.5, label, transform=ax_row[0].transAxes, rotation=90, va="center", ha="right",
                       fontsize=8)  # fmt: skip
    fig.suptitle(
        title or "test images: true (green circles) vs predicted (red crosses) landmarks", fontsize=9
    )
    fig.tight_layout()
    return fig


def example_runs(df: pd.DataFrame, seed: int | None = None) -> pd.DataFrame:
    """One run per method variant and dataset at one seed (the lowest present), for :func:`plot_predictions`;
    fine-tuning from several hub models keeps its first source only."""
    if df.empty:
        return df
    seed = int(df.seed.min()) if seed is None else seed
    at = df[df.seed == seed]
    return at.sort_values(["dataset", "variant", "pretrained"]).groupby(["dataset", "variant"]).head(1)


__all__ = ["example_runs", "plot_predictions", "test_images"]
