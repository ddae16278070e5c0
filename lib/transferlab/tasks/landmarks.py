"""Landmark detection (facial landmarks; the mini protocol's keypoint proxy): a heat-map or regression head, NME (↓).

**Targets** are landmark coordinates y [B, L, 2] (float, (x, y) in pixels of the network's input image, the
pixel-index convention of :mod:`transferlab.tasks.landmark_metrics`). For the face datasets the input image is the
face crop (256 × 256, HRNet-Facial's input size): a crop is a similarity transform of the photograph, under which
NME is invariant, so NME in the crop's frame equals NME in the photograph's. Data loaders put the targets in that
frame and move them with every augmentation (:mod:`transferlab.data.keypoints`).

**Heads** (``head`` task parameter):

- ``"heatmap"`` (default; ``spatial``: reads the last feature map [B, C, h, w]) — the deconvolution head of "Simple
  Baselines" (Xiao, Wu, Wei, ECCV 2018, https://arxiv.org/abs/1804.06208; microsoft/human-pose-estimation.pytorch
  ``pose_resnet.py``): n × [ConvTranspose2d(4×4, stride 2, padding 1, no bias) → BN → ReLU], then a 1×1 conv to L
  heat maps [B, L, 2ⁿh, 2ⁿw]; deconvolution and final weights N(0, 0.001), BN (1, 0), biases 0, as there. With a
  ResNet-50 at 256 px: 8×8 → 64×64 with n = 3 of 256 channels, the Simple Baselines configuration and the 64×64
  output of HRNet-Facial. Targets: Gaussians of peak 1 at the landmarks (σ in heat-map pixels: HRNet-Facial's
  configs use 1.0 for 300W, 1.5 for WFLW and COFW). Loss: the mean squared error over every heat-map pixel
  (HRNet-Facial ``tools/train.py``: ``MSELoss``, mean). Decoding: :func:`~transferlab.tasks.landmark_metrics.decode_heatmaps`.
- ``"regression"`` — direct coordinate regression on the pooled feature: Linear(D, 2L) → coordinates normalised
  as ((x + 0.5)/W, (y + 0.5)/H) ∈ (0, 1) for points inside the image; N(0, 0.01) weights, bias 0.5 (every landmark
  starts at the image centre: ours); loss L1 on the normalised coordinates (ours; Feng et al. CVPR 2018,
  https://arxiv.org/abs/1711.06753, found L1 better than L2 for landmark regression).

**combine()** (ensembles; Hub-Pathway aggregates outputs itself as Σ_i w_i · out_i, the same space): the mean of the
members' outputs — heat maps are averaged pixel-wise before decoding, regressed coordinates are averaged. Every
``how`` an ensemble accepts (``prob``, ``logits``, ``mean``) is this mean: heat maps are regressed scores, neither
logits nor probabilities.

**Metric**: NME in percent, lower is better (``fit()`` keeps the lowest-validation-NME step); extras FR@10 % (%),
AUC@10 % (fraction, higher is better) and ``examples``: the predicted coordinates of the first few evaluated images
(what the report's figure draws).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from transferlab.errors import ConfigError
from transferlab.models import init_head
from transferlab.tasks import landmark_metrics as lm
from transferlab.tasks.base import TASKS, Metric, Predict, Task

HEADS = ("heatmap", "regression")
COMBINE = ("mean", "prob", "logits")  # all the mean (module doc): the names the ensemble's config accepts
EXAMPLES = 8  # images whose predictions evaluate() keeps (the first ones of the evaluated order)


class HeatmapHead(nn.Module):
    """``layers`` × (deconv 4×4/2 → BN → ReLU) then conv 1×1 → L maps: [B, C, h, w] → [B, L, 2^layers·h, 2^layers·w]."""

    def __init__(self, in_channels: int, landmarks: int, layers: int, channels: int):
        super().__init__()
        blocks: list[nn.Module] = []
        for i in range(layers):
            blocks += [
                nn.ConvTranspose2d(in_channels if i == 0 else channels, channels, 4, 2, 1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            ]
        self.deconv = nn.Sequential(*blocks)
        self.final = nn.Conv2d(channels if layers else in_channels, landmarks, 1)
        for m in self.modules():  # Simple Baselines' init_weights
            if isinstance(m, nn.ConvTranspose2d | nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.deconv(x))


@TASKS.register("landmarks")
class Landmarks(Task):
    """L landmarks; parameters (a dataset's ``task_params``): ``input_size`` [H, W] (required), ``normaliser``
    (a pair of landmark indices or ``"bbox_diagonal"``), ``head``, ``sigma``, ``deconv_layers``, ``deconv_channels``."""

    name = "landmarks"
    metric = Metric("nme", "NME (%)", "min")

    def __init__(self, outputs: int, labels: list[str] | None = None, **params):
        super().__init__(outputs, labels, **params)
        p = {"normaliser": "bbox_diagonal", "head": "heatmap", "sigma": 1.5, "deconv_layers": 3,
             "deconv_channels": 256, **params}  # fmt: skip
        unknown = sorted(set(p) - {"normaliser", "head", "sigma", "deconv_layers", "deconv_channels",
                                   "input_size"})  # fmt: skip
        if unknown or "input_size" not in p:
            raise ConfigError(f"landmark task parameters {unknown or ''} unknown or input_size missing: give "
                              "input_size [H, W] and any of normaliser, head, sigma, deconv_layers, deconv_channels")  # fmt: skip
        if p["head"] not in HEADS:
            raise ConfigError(f"head={p['head']!r}; choose one of: {', '.join(HEADS)}")
        try:
            self.normaliser = lm.check_normaliser(p["normaliser"], outputs)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        size = p["input_size"]
        self.input_size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.head_kind, self.sigma = p["head"], float(p["sigma"])
        self.deconv_layers, self.deconv_channels = int(p["deconv_layers"]), int(p["deconv_channels"])
        if self.sigma <= 0 or self.deconv_layers < 0 or self.deconv_channels < 1:
            raise ConfigError("sigma must be > 0, deconv_layers >= 0 and deconv_channels >= 1")

    @property
    def spatial(self) -> bool:  # type: ignore[override]
        return self.head_kind == "heatmap"

    # ------------------------------------------------------------------------------------------------ head
    def head(self, in_features: int) -> nn.Module:
        if self.head_kind == "heatmap":
            return HeatmapHead(in_features, self.outputs, self.deconv_layers, self.deconv_channels)
        head = init_head(nn.Linear(in_features, 2 * self.outputs))
        nn.init.constant_(head.bias, 0.5)  # every landmark starts at the image centre
        return head

    def _scale(self, like: torch.Tensor) -> torch.Tensor:
        return like.new_tensor([self.input_size[1], self.input_size[0]], dtype=torch.float32)  # (W, H)

    def decode(self, outputs: torch.Tensor) -> torch.Tensor:
        """The head's outputs → predicted coordinates [B, L, 2] in the input frame."""
        if self.head_kind == "heatmap":
            return lm.from_map(lm.decode_heatmaps(outputs), self.input_size, outputs.shape[-2:])
        return outputs.float().view(len(outputs), self.outputs, 2) * self._scale(outputs) - 0.5

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.head_kind == "heatmap":
            maps = lm.gaussian_heatmaps(targets, outputs.shape[-2:], self.input_size, self.sigma)
            return F.mse_loss(outputs.float(), maps)
        normalised = (targets.float() + 0.5) / self._scale(targets)
        return F.l1_loss(outputs.float().view_as(normalised), normalised)

    def combine(self, outputs: list[torch.Tensor], how: str = "mean") -> torch.Tensor:
        if how not in COMBINE:
            raise ValueError(
                f"combine={how!r}; choose one of: {', '.join(COMBINE)} (all the mean of the outputs)"
            )
        return torch.stack([o.float() for o in outputs]).mean(0)

    # ------------------------------------------------------------------------------------------------ metric
    @torch.no_grad()
    def evaluate(self, predict: Predict, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                 amp: torch.dtype | None = None) -> dict:  # fmt: skip
        """NME (%), mean loss, FR@10 %, AUC@10 % and the first images' predictions of ``predict`` over ``batches``."""
        errors, examples, loss_sum, n = [], [], 0.0, 0
        for x, y in batches:
            if x.dim() == 5:
                raise ValueError("landmark evaluation takes one crop per image (set ten_crop=False)")
            with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
                out = predict(x).float()
            loss_sum += self.loss(out, y).item() * len(y)
            pred = self.decode(out)
            errors.append(lm.nme(pred, y, self.normaliser).cpu())
            if len(examples) < EXAMPLES:
                kept = pred[: EXAMPLES - len(examples)].cpu().tolist()
                examples += [[[round(v, 2) for v in point] for point in img] for img in kept]
            n += len(y)
        if n == 0:
            raise ValueError("evaluation set is empty")
        e = torch.cat(errors)
        return {
            "value": float(100.0 * e.mean()),
            "loss": loss_sum / n,
            "n": n,
            "extras": {"fr_10": lm.failure_rate(e), "auc_10": round(lm.auc(e), 6), "examples": examples},
        }

    def describe(self) -> dict:
        norm = self.normaliser if isinstance(self.normaliser, str) else list(self.normaliser)
        return {**super().describe(), "head": self.head_kind, "normaliser": norm}


__all__ = ["COMBINE", "EXAMPLES", "HEADS", "HeatmapHead", "Landmarks"]
