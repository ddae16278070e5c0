"""Landmark maths without learnable parts: heat-map targets and decoding, NME with its normaliser, FR and AUC.

Coordinates everywhere are (x, y) in pixels of the network's input image, in the **pixel-index convention**: the
centre of the pixel in row i, column j is (x, y) = (j, i); a horizontal flip of a width-W image maps x to W − 1 − x.
A heat map of size (h, w) over an input of size (H, W) has strides s_x = W / w, s_y = H / h, and its pixel u
covers input x = (u + 0.5)·s − 0.5 (pixel centres aligned, whatever the stride).

**NME** (normalised mean error) of one image with prediction p and ground truth g, L landmarks:

    NME = (1/L) Σ_l ‖p_l − g_l‖₂ / d(g)

with d the dataset's normaliser, computed from the ground truth: the distance between two landmarks (``(i, j)``:
the outer eye corners 36, 45 for 300W and 60, 72 for WFLW, points 8, 9 for COFW, 0-based — HRNet-Facial-Landmark-
Detection ``lib/core/evaluation.py`` ``compute_nme``), or ``"bbox_diagonal"``: the diagonal of the ground-truth
landmarks' bounding box (the mini proxy). A dataset's NME is the mean over images, reported in percent.

**FR@t** (failure rate): the percentage of images with NME > t (t = 0.10). **AUC@t**: the area under the cumulative
error distribution CED(e) = share of images with NME ≤ e, over e ∈ [0, t], divided by t (∈ [0, 1], higher is better).
We compute it exactly, AUC = mean_i max(0, 1 − NME_i / t), rather than by a trapezoid over a threshold grid as
some public code does (the two agree to the grid's resolution).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

NORMALISERS = ("bbox_diagonal",)  # besides a pair of landmark indices
FAILURE_THRESHOLD = 0.10


def check_normaliser(spec, landmarks: int) -> tuple[int, int] | str:
    """``spec`` validated: ``"bbox_diagonal"`` or a pair of distinct 0-based landmark indices below ``landmarks``."""
    if isinstance(spec, str):
        if spec not in NORMALISERS:
            raise ValueError(
                f"normaliser={spec!r}; choose one of {NORMALISERS} or a pair of landmark indices"
            )
        return spec
    pair = tuple(int(i) for i in spec)
    if len(pair) != 2 or pair[0] == pair[1] or not all(0 <= i < landmarks for i in pair):
        raise ValueError(f"normaliser={spec!r} must be two distinct landmark indices in 0..{landmarks - 1}")
    return pair  # type: ignore[return-value]


def normaliser_distance(truth: torch.Tensor, spec: tuple[int, int] | str) -> torch.Tensor:
    """d(g) [B] of ground-truth landmarks ``truth`` [B, L, 2] (see the module doc)."""
    if spec == "bbox_diagonal":
        extent = truth.amax(1) - truth.amin(1)  # [B, 2]: width, height of the landmarks' box
        d = extent.norm(dim=1)
    else:
        i, j = spec
        d = (truth[:, i] - truth[:, j]).norm(dim=1)
    if (d <= 0).any():
        raise ValueError(f"a zero normaliser ({spec}) in the ground truth: two landmarks coincide")
    return d


def nme(pred: torch.Tensor, truth: torch.Tensor, spec: tuple[int, int] | str) -> torch.Tensor:
    """Per-image NME [B] (a fraction, not percent) of ``pred`` against ``truth``, both [B, L, 2]."""
    err = (pred.double() - truth.double()).norm(dim=2).mean(1)
    return err / normaliser_distance(truth.double(), spec)


def failure_rate(errors: torch.Tensor, threshold: float = FAILURE_THRESHOLD) -> float:
    """Percentage of images whose NME exceeds ``threshold``."""
    return float(100.0 * (errors > threshold).double().mean())


def auc(errors: torch.Tensor, threshold: float = FAILURE_THRESHOLD) -> float:
    """Exact area under the CED curve on [0, threshold], divided by threshold (module doc)."""
    return float((1.0 - errors.double() / threshold).clamp_min(0).mean())


# ------------------------------------------------------------------------------------------------- heat maps
def strides(input_size: Sequence[int], map_size: Sequence[int]) -> tuple[float, float]:
    """(s_y, s_x): input pixels per heat-map pixel."""
    return input_size[0] / map_size[0], input_size[1] / map_size[1]


def to_map(points: torch.Tensor, input_size: Sequence[int], map_size: Sequence[int]) -> torch.Tensor:
    """Input-frame (x, y) [..., 2] → heat-map frame, pixel centres aligned."""
    sy, sx = strides(input_size, map_size)
    scale = points.new_tensor([sx, sy])
    return (points + 0.5) / scale - 0.5


def from_map(points: torch.Tensor, input_size: Sequence[int], map_size: Sequence[int]) -> torch.Tensor:
    """Heat-map frame (u, v) [..., 2] → input-frame (x, y); the inverse of :func:`to_map`."""
    sy, sx = strides(input_size, map_size)
    return (points + 0.5) * points.new_tensor([sx, sy]) - 0.5


def gaussian_heatmaps(points: torch.Tensor, map_size: Sequence[int], input_size: Sequence[int],
                      sigma: float) -> torch.Tensor:  # fmt: skip
    """Targets [B, L, h, w]: exp(−((u − u_l)² + (v − v_l)²) / 2σ²), peak 1 at each landmark (σ in heat-map pixels).

    As HRNet's ``generate_target`` (unnormalised, peak 1), but centred at the landmark's sub-pixel position and not
    truncated at 3σ (HRNet rounds the centre to an integer pixel and cuts the Gaussian at 3σ): ours. Separable, so
    it costs O(B·L·(h + w)) exponentials. A landmark outside the map leaves only the Gaussian's tail inside it."""
    h, w = map_size
    uv = to_map(points.float(), input_size, map_size)  # [B, L, 2]
    xs = torch.arange(w, device=points.device, dtype=torch.float32)
    ys = torch.arange(h, device=points.device, dtype=torch.float32)
    gx = torch.exp(-((xs - uv[..., :1]) ** 2) / (2 * sigma**2))  # [B, L, w]
    gy = torch.exp(-((ys - uv[..., 1:]) ** 2) / (2 * sigma**2))  # [B, L, h]
    return gy[..., :, None] * gx[..., None, :]


def decode_heatmaps(maps: torch.Tensor) -> torch.Tensor:
    """Heat maps [B, L, h, w] → (u, v) [B, L, 2] in the heat-map frame: the arg-max, moved a quarter pixel towards
    the higher neighbour on each axis when both neighbours exist (HRNet ``decode_preds``; Newell et al. 2016)."""
    b, n, h, w = maps.shape
    flat = maps.float().flatten(2).argmax(2)  # [B, L]
    v, u = flat // w, flat % w
    m = maps.float().flatten(0, 1)  # [B·L, h, w]
    rows = torch.arange(b * n, device=maps.device)
    uf, vf = u.flatten(), v.flatten()
    inner_u = (uf > 0) & (uf < w - 1)
    inner_v = (vf > 0) & (vf < h - 1)
    right = m[rows, vf, (uf + 1).clamp_max(w - 1)] - m[rows, vf, (uf - 1).clamp_min(0)]
    down = m[rows, (vf + 1).clamp_max(h - 1), uf] - m[rows, (vf - 1).clamp_min(0), uf]
    du = torch.where(inner_u, 0.25 * torch.sign(right), torch.zeros_like(right))
    dv = torch.where(inner_v, 0.25 * torch.sign(down), torch.zeros_like(down))
    coords = torch.stack([uf.float() + du, vf.float() + dv], dim=1)
    return coords.view(b, n, 2)


__all__ = ["FAILURE_THRESHOLD", "NORMALISERS", "auc", "check_normaliser", "decode_heatmaps", "failure_rate",
           "from_map", "gaussian_heatmaps", "nme", "normaliser_distance", "to_map"]  # fmt: skip
