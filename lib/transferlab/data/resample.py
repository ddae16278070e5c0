"""Pillow's bilinear resize of image crops, computed on whole uint8 batches on any device, bit for bit.

``transforms.RandomResizedCrop`` on a PIL image is ``image.crop(box).resize((S, S), BILINEAR)``. To run it on the
training device without changing a single input value, this module computes what Pillow's ``Resample.c`` computes,
in integers:

- per axis, Pillow's coefficient table (``precompute_coeffs``): for output pixel o of a crop of length L resized to
  S, scale = L / S, support = max(scale, 1) (the triangle filter widened when reducing: antialiasing), centre
  c = (o + 0.5)·scale, taps x ∈ [trunc(c − support + 0.5), trunc(c + support + 0.5)) ∩ [0, L), weights
  tri((x − c + 0.5) / max(scale, 1)) normalised to sum 1, then fixed point: k = trunc(w·2²² ± 0.5)
  (``normalize_coeffs_8bpc``), in float64 on the host exactly as the C code does in ``double``;
- per pass, ``clip8((2²¹ + Σ_t k_t · p_t) >> 22)`` in int32 (the sums stay below 2³¹), so the result is exact on
  CPU and GPU alike; the intermediate image is rounded to uint8 between the two passes, as Pillow's is;
- the pass order: Pillow up to 12 always runs the horizontal pass first; Pillow 13 runs first the pass that costs it
  less (an undocumented heuristic, found by experiment here: :func:`_cost_rule`). Which rule the installed Pillow
  follows is probed once per process (:func:`pass_order_rule`), so the GPU image's Pillow may differ from ours.

Exactness is tested, not assumed: ``tests/test_fast_input.py`` compares this module with Pillow crop by crop, and the
whole device path with the PIL path batch by batch. A different Pillow version may round differently; the decoded-
image cache records the Pillow version, and the tests fail loudly if the installed one disagrees.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

PRECISION_BITS = 22  # Pillow's fixed point for 8-bit images: 32 − 8 − 2
_HALF = 1 << (PRECISION_BITS - 1)


def coefficients(length: np.ndarray, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's bilinear tables for crops of ``length`` [B] pixels resized to ``out``: (first tap [B, out] int64,
    fixed-point weights [B, out, K] int32, zero past each output's last tap), K the widest support in the batch."""
    length = np.asarray(length, dtype=np.int64)
    scale = length.astype(np.float64) / out  # (double)(in1 − in0) / outSize with in0 = 0: exact for integers
    filterscale = np.maximum(scale, 1.0)
    support = filterscale  # the bilinear filter's support is 1, widened by the reduction factor
    taps = int(np.ceil(support.max())) * 2 + 1
    o = np.arange(out, dtype=np.float64)[None, :]
    centre = (o + 0.5) * scale[:, None]
    first = np.maximum(np.trunc(centre - support[:, None] + 0.5), 0).astype(np.int64)
    stop = np.minimum(np.trunc(centre + support[:, None] + 0.5).astype(np.int64), length[:, None])
    count = stop - first
    weights = np.zeros((len(length), out, taps))
    total = np.zeros((len(length), out))
    inv = 1.0 / filterscale[:, None]
    for t in range(taps):  # sequential sums, as the C loop adds them
        x = np.abs(((first + t) - centre + 0.5) * inv)
        w = np.where((x < 1.0) & (t < count), 1.0 - x, 0.0)
        weights[:, :, t] = w
        total = total + w
    weights = np.where(
        total[..., None] != 0.0, weights / np.where(total == 0.0, 1.0, total)[..., None], weights
    )
    fixed = np.trunc(
        np.where(weights < 0, weights * (1 << PRECISION_BITS) - 0.5, weights * (1 << PRECISION_BITS) + 0.5)
    )
    return first, fixed.astype(np.int32)


def _pass(x: torch.Tensor, index: torch.Tensor, weights: torch.Tensor, dim: int) -> torch.Tensor:
    """One Pillow pass along ``dim`` (2: rows, 3: columns) of int32 x [B, C, H, W]: output position o of sample b
    is clip8((2²¹ + Σ_t weights[b, o, t] · x[.., index[b, o, t], ..]) >> 22)."""
    b, c, h, w = x.shape
    out = index.shape[1]
    shape = [b, c, out, w] if dim == 2 else [b, c, h, out]
    acc = torch.full(shape, _HALF, dtype=torch.int32, device=x.device)
    for t in range(index.shape[2]):
        if dim == 2:
            i = index[:, None, :, t, None].expand(shape)
            k = weights[:, None, :, t, None]
        else:
            i = index[:, None, None, :, t].expand(shape)
            k = weights[:, None, None, :, t]
        acc += torch.gather(x, dim, i) * k
    return (acc >> PRECISION_BITS).clamp_(0, 255)


def tables(start: np.ndarray, length: np.ndarray, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Absolute source indices [B, out, K] (into the uncropped axis) and weights [B, out, K] for crops [start,
    start + length) resized to ``out``; padded taps point inside the crop with weight 0."""
    first, weights = coefficients(length, out)
    t = np.arange(weights.shape[2])
    index = (
        np.minimum(first[..., None] + t, np.asarray(length)[:, None, None] - 1)
        + np.asarray(start)[:, None, None]
    )
    return index.astype(np.int64), weights


def _cost_rule(h: np.ndarray, w: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Pillow 13 (measured on every crop of up to 256 × 256 pixels resized to 224 × 224, each compared with both
    orders): the vertical pass goes first exactly when the crop shrinks vertically and its vertical reduction exceeds
    twice its horizontal one, (h/H − 1) > 2 (w/W − 1); in integers (h − H)·W > 2 (w − W)·H. For non-square outputs
    this is our extrapolation (the presets resize to squares)."""
    return (h > out_h) & ((h - out_h) * out_w > 2 * (w - out_w) * out_h)


def _horizontal_rule(h: np.ndarray, w: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Pillow up to 12 (``ImagingResampleInner``): always the horizontal pass first."""
    return np.zeros(np.broadcast(h, w).shape, dtype=bool)


RULES = {"cost": _cost_rule, "horizontal": _horizontal_rule}
_PROBES = ((250, 100), (240, 230), (240, 236), (100, 250))  # where the two known rules disagree, and agree


@functools.cache
def pass_order_rule() -> str:
    """Which known pass order the installed Pillow follows, found by resizing four probe crops with Pillow and with
    both orders here (once per process, ~0.1 s); DevicePathError-free callers get a ValueError if neither fits."""
    from PIL import Image

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].to(torch.int32)
    h, w = (np.array(v) for v in zip(*_PROBES))
    rows, cols = (tuple(torch.from_numpy(a) for a in tables(np.zeros(len(h), int), n, 224)) for n in (h, w))
    xs = x.expand(len(h), -1, -1, -1)
    by_order = {True: _pass(_pass(xs, *rows, 2), *cols, 3), False: _pass(_pass(xs, *cols, 3), *rows, 2)}
    pil = Image.fromarray(img)
    seen = []
    for k, (ph, pw) in enumerate(_PROBES):
        ref = torch.from_numpy(np.asarray(pil.crop((0, 0, pw, ph)).resize((224, 224), Image.BILINEAR)).copy())
        ref = ref.permute(2, 0, 1).to(torch.int32)
        seen.append({order for order, y in by_order.items() if torch.equal(y[k], ref)})
    for name, rule in RULES.items():
        if all(bool(v) in s for v, s in zip(rule(h, w, 224, 224), seen)):
            return name
    raise ValueError(f"the installed Pillow resamples crops in neither known pass order (probes {_PROBES}: {seen}); "
                     "use pipeline='cache' or 'pil'")  # fmt: skip


def vertical_first(height: np.ndarray, width: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """[B] bool: the installed Pillow resizes a crop of ``height`` × ``width`` to ``out_h`` × ``out_w`` vertical
    pass first (:func:`pass_order_rule`). With one pass only (h = H or w = W) the order is moot."""
    h, w = np.asarray(height, dtype=np.int64), np.asarray(width, dtype=np.int64)
    return RULES[pass_order_rule()](h, w, out_h, out_w)


def crop_tables(boxes: np.ndarray, out: tuple[int, int]) -> dict:
    """The host-side half of :func:`resize_crops` (DataLoader workers run it): for crop boxes [B, 4] = (top, left,
    height, width), the samples reordered so that those resized vertical pass first come first (``order`` [B],
    ``n_vertical``), and in that order the absolute source indices and fixed-point weights of both passes. All
    tensors, so the loader pins them and the copies to the device never wait for the device."""
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    top, left, height, width = boxes.T
    v_first = vertical_first(height, width, *out)
    order = np.argsort(~v_first, kind="stable")
    rows = tables(top[order], height[order], out[0])
    cols = tables(left[order], width[order], out[1])
    return {"order": torch.from_numpy(order), "n_vertical": int(v_first.sum()),
            "rows": tuple(torch.from_numpy(a) for a in rows), "cols": tuple(torch.from_numpy(a) for a in cols)}  # fmt: skip


def resize_crops(x: torch.Tensor, crops: dict | np.ndarray, out: tuple[int, int]) -> torch.Tensor:
    """uint8 x [B, C, H, W] (any device, any memory format) and :func:`crop_tables` (or the boxes [B, 4] to make
    them from) → uint8 [B, C, out_h, out_w]: each crop resized as Pillow's ``crop(box).resize(out[::-1], BILINEAR)``
    does, in the batch's order. No host synchronisation: the group sizes are host integers."""
    t = crop_tables(crops, out) if not isinstance(crops, dict) else crops
    dev = x.device
    order = t["order"].to(dev, non_blocking=True)
    ri, rk = (a.to(dev, non_blocking=True) for a in t["rows"])
    ci, ck = (a.to(dev, non_blocking=True) for a in t["cols"])
    xi = x.index_select(0, order).to(torch.int32)
    n, parts = t["n_vertical"], []
    if n:
        parts.append(_pass(_pass(xi[:n], ri[:n], rk[:n], 2), ci[:n], ck[:n], 3))
    if n < len(order):
        parts.append(_pass(_pass(xi[n:], ci[n:], ck[n:], 3), ri[n:], rk[n:], 2))
    y = torch.cat(parts).to(torch.uint8)
    return torch.empty_like(y).index_copy_(0, order, y)  # back to the batch's order


__all__ = [
    "PRECISION_BITS",
    "RULES",
    "coefficients",
    "crop_tables",
    "pass_order_rule",
    "resize_crops",
    "tables",
    "vertical_first",
]
