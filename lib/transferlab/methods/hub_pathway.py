"""Hub-Pathway (Shu, Cao, Zhang, Wang, Long; NeurIPS 2022): data-dependent pathways through a hub of models.

https://arxiv.org/abs/2206.03726. No official code exists and only the abstract could be read: everything below is
transferlab's reading, §6 of ``shared/docs/papers/hub_pathway.md``, each component behind a ``Config`` switch.

The K hub models f_i may have different architectures (aggregation is on outputs); each gets a new head h_i. For
x [B, C, H, W]:

    u(x) = G(pool_s(x)) ∈ R^D                      pathway generator: 2 convs + GAP on x area-pooled to s × s
    z(x) = W_g u + b_g ∈ R^K,  z̃ = z + ε · softplus(W_n u + b_n),  ε ~ N(0, I)   (training with ``noise`` only)
    T(x) = top-k(z̃),  w_i(x) = softmax_{j ∈ T}(z̃_j)_i for i ∈ T, 0 elsewhere    w [B, K], k non-zeros, rows sum to 1
    ŷ(x) = Σ_{i ∈ T(x)} w_i(x) · h_i(f_i(x))        logits [B, N] (landmarks: heat maps [B, L, h, w] or coordinates)
    L = CE(ŷ, y) + λ_explore · (CV²(imp) + CV²(load)) + λ_exploit · mean_{i ∈ A} mean_{x : i ∈ T(x)} CE(h_i(f_i(x)), y)

Sparse dispatch: model i runs only on the samples whose T(x) holds it (compute grows with k, not K); a model no
sample picks is not run, so it gets no gradient from the task loss. importance_i = Σ_x w_i(x); load_i = Σ_x
P(i ∈ top-k under re-drawn noise) = Σ_x Φ((z_i − τ_i) / σ_i), τ_i the k-th largest z̃_j over j ≠ i (Shazeer et al.
2017, https://arxiv.org/abs/1701.06538, App. A, smooth load); without noise (or k = K) load is the hard count of
samples picking i. CV²(v) = Var(v) / mean(v)² (population variance): 0 exactly for uniform use. A = the models
the batch activates; the exploitation term is averaged over them (§6 writes a bare sum Σ_i: we divide by |A| so
λ_exploit = 1 weighs it like one cross-entropy whatever K and k).

Defaults (all transferlab's reading, §6 of ``shared/docs/papers/hub_pathway.md``): k = 2 (§6: "k = 2 of 5");
noise on; λ_explore = 0.1 (the value of Shazeer et al.'s w_importance = w_load); λ_exploit = 1.0; generator width
16 at s = 32 (inputs at most 32 px are not resized): ≈0.5 MFLOPs at 224 px, < 10% of one mini-hub ResNet-8.
Initialisation: W_g, b_g PyTorch's default (ties broken per sample from the start); W_n, b_n zero, so the initial
noise std is softplus(0) ≈ 0.69 (Shazeer et al.'s zero init). The generator, its noise layer and all K heads are
``new_parameters`` (``head_lr_mult`` × lr); the pre-trained bodies train at the base lr.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from transferlab.config import ConfigError, RunConfig
from transferlab.methods.base import METHODS, VISION, Method, method_config
from transferlab.methods.hubs import check_hub_backbone, hub_members
from transferlab.tasks import Task

PAPER = "Hub-Pathway: Transfer Learning from A Hub of Pre-trained Models (NeurIPS 2022), https://arxiv.org/abs/2206.03726"


def cv_squared(v: torch.Tensor) -> torch.Tensor:
    """Squared coefficient of variation Var(v) / mean(v)² of a [K] vector (population variance; 0 if uniform)."""
    v = v.float() if v.dtype != torch.float64 else v
    return v.var(correction=0) / (v.mean() ** 2 + 1e-10)


def exploration_loss(importance: torch.Tensor, load: torch.Tensor) -> torch.Tensor:
    """The balance penalty CV²(importance) + CV²(load) on [K] usage vectors: 0 for uniform use of the hub."""
    return cv_squared(importance) + cv_squared(load)


@dataclass
class Routing:
    """One batch's pathways: ``weights`` [B, K] (k non-zeros per row), ``top`` [B, k] model indices, ``top_weights``
    [B, k], the clean gate logits ``clean`` [B, K], and ``noisy``/``noise_std`` [B, K] (``noise_std`` None if clean)."""

    weights: torch.Tensor
    top: torch.Tensor
    top_weights: torch.Tensor
    clean: torch.Tensor
    noisy: torch.Tensor
    noise_std: torch.Tensor | None


class PathwayGenerator(nn.Module):
    """G: x [B, C, H, W] → area-pooled to ≤ s × s → conv3×3/2 → ReLU → conv3×3/2 → ReLU → GAP → u [B, width];
    ``gate`` u → z [B, K] and ``noise`` u → pre-softplus noise scale [B, K]."""

    def __init__(self, in_channels: int, num_models: int, width: int, size: int):
        super().__init__()
        self.size = size
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
        )  # fmt: skip
        self.gate = nn.Linear(width, num_models)
        self.noise = nn.Linear(width, num_models)
        nn.init.zeros_(self.noise.weight)
        nn.init.zeros_(self.noise.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if max(x.shape[-2:]) > self.size:
            x = F.adaptive_avg_pool2d(x, self.size)
        u = self.body(x)
        return self.gate(u), self.noise(u)


@METHODS.register("hub_pathway")
class HubPathway(Method):
    name = "hub_pathway"
    paper = PAPER
    tasks = VISION
    weights = "hub"

    @dataclass(frozen=True)
    class Config:
        k: int = 2  # models activated per sample, 1..K (§6: k = 2 of 5); k = K is a dense softmax gate
        noise: bool = True  # noisy gating in training (§6); False: clean top-k (ablation "no noise")
        explore_weight: float = 0.1  # λ_explore (Shazeer et al. 2017's w_importance = w_load); 0: ablation
        exploit_weight: float = 1.0  # λ_exploit (ours: weighs like the task loss); 0: ablation
        generator_width: int = 16  # channels of the generator's two convs (= dim of u(x))
        generator_size: int = 32  # the generator sees the input area-pooled to at most this side (pixels)

        def __post_init__(self) -> None:
            if self.k < 1:
                raise ConfigError(f"k={self.k} must be an integer in 1..K (K = the number of hub models)")
            for name in ("explore_weight", "exploit_weight"):
                if not getattr(self, name) >= 0:
                    raise ConfigError(f"{name}={getattr(self, name)} must be >= 0 (0 switches the term off)")
            if self.generator_width < 1 or self.generator_size < 4:
                raise ConfigError(
                    f"generator_width={self.generator_width} must be >= 1 and generator_size="
                    f"{self.generator_size} >= 4 (pixels)"
                )

    def __init__(self, members: nn.ModuleList, task: Task, cfg: HubPathway.Config, experts: list[str]):
        if not 1 <= cfg.k <= len(members):
            raise ConfigError(
                f"k={cfg.k} must be in 1..K = 1..{len(members)} (the hub's models: {', '.join(experts)})"
            )
        super().__init__(members, task, cfg)  # self.backbone: the K models, in hub order
        self.experts = list(experts)
        in_channels = members[0].stem[0].in_channels
        self.generator = PathwayGenerator(in_channels, len(members), cfg.generator_width, cfg.generator_size)
        self._flops: dict[tuple, list[float]] = {}  # input shape → per-image [generator, model 1..K]

    @classmethod
    def check(cls, run: RunConfig) -> None:
        super().check(run)
        hub = check_hub_backbone(run, cls.name)  # any architectures: aggregation is on the outputs
        cfg = method_config(run.method, run.method_params)
        if not 1 <= cfg.k <= len(hub.models):
            raise ConfigError(f"k={cfg.k} must be in 1..K = 1..{len(hub.models)} (hub {hub.name!r}: "
                              f"{', '.join(hub.names())})")  # fmt: skip

    @classmethod
    def build(cls, run: RunConfig, task: Task) -> Method:
        cfg = method_config(run.method, run.method_params)
        hub, members = hub_members(run, task)
        return cls(members, task, cfg, hub.names())

    # ------------------------------------------------------------------------------------------------ pathways
    def new_parameters(self) -> list[nn.Parameter]:
        heads = [p for member in self.backbone for p in member.head.parameters()]
        return heads + list(self.generator.parameters())

    def route(self, x: torch.Tensor) -> Routing:
        """Pathway weights of a batch (noisy only in training with ``cfg.noise``); gate maths in ≥ float32."""
        clean, raw_std = self.generator(x)
        dtype = torch.promote_types(clean.dtype, torch.float32)  # bf16 under autocast → float32
        clean, raw_std = clean.to(dtype), raw_std.to(dtype)
        std, noisy = None, clean
        if self.training and self.cfg.noise:
            std = F.softplus(raw_std)
            noisy = clean + torch.randn_like(clean) * std  # global RNG: checkpointed by fit(), exact resume
        top_logits, top = noisy.topk(self.cfg.k, dim=1)
        top_weights = top_logits.softmax(dim=1)
        weights = torch.zeros_like(noisy).scatter(1, top, top_weights)
        return Routing(weights, top, top_weights, clean, noisy, std)

    def load(self, r: Routing) -> torch.Tensor:
        """load_i [K]: the smooth estimate Σ_x P(i ∈ top-k) under noise, else the hard count (no gradient)."""
        k, num = self.cfg.k, r.noisy.shape[1]
        if r.noise_std is None or k == num:
            return (r.weights > 0).sum(0).to(r.weights.dtype)
        kth = r.noisy.topk(k + 1, dim=1).values  # [B, k+1]
        chosen = r.weights > 0
        threshold = torch.where(chosen, kth[:, k : k + 1], kth[:, k - 1 : k])  # k-th largest among the others
        normal = torch.distributions.Normal(0.0, 1.0)
        return normal.cdf((r.clean - threshold) / r.noise_std).sum(0)

    def dispatch(self, x: torch.Tensor, r: Routing) -> tuple[torch.Tensor, dict[int, tuple]]:
        """ŷ = Σ_i w_i · h_i(f_i(x)) (the task's outputs: [B, N] logits, [B, L, h, w] heat maps, ...), each model run
        only on its samples; also {i: (sample idx, outputs_i)}."""
        b, k = r.top.shape
        model = r.top.flatten()
        order = torch.argsort(model, stable=True)  # group the (sample, model) pairs by model
        samples = torch.arange(b, device=x.device).repeat_interleave(k)[order]
        pair_weights = r.top_weights.flatten()[order]
        # The one host sync of a step, and inherent: the sample counts fix the shapes of the K model calls. Running
        # every model on the whole batch instead (masked) would remove it but change the numbers (BatchNorm would
        # see other samples) and lose the k/K compute saving that is the method's point.
        counts = torch.bincount(model, minlength=len(self.backbone)).tolist()
        out, per_model, start = None, {}, 0
        for i, (member, n) in enumerate(zip(self.backbone, counts)):
            if n == 0:
                continue  # not run at all: no compute, no gradient from the task loss
            idx, w = samples[start : start + n], pair_weights[start : start + n]
            start += n
            logits = member(x.index_select(0, idx))
            per_model[i] = (idx, logits)
            if (
                out is None
            ):  # the task's output shape: logits [B, N], heat maps [B, L, h, w], coordinates [B, 2L]
                out = x.new_zeros(b, *logits.shape[1:], dtype=torch.promote_types(w.dtype, logits.dtype))
            w = w.view(-1, *[1] * (logits.dim() - 1)).to(out.dtype)
            out = out.index_add(0, idx, w * logits.to(out.dtype))
        return out, per_model

    # ------------------------------------------------------------------------------------------------ training
    def loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        r = self.route(x)
        logits, per_model = self.dispatch(x, r)
        task = self.task.loss(logits, y)
        explore = exploration_loss(r.weights.sum(0), self.load(r))
        exploit = torch.stack([self.task.loss(z, y[idx]) for idx, z in per_model.values()]).mean()
        c = self.cfg
        total = task + c.explore_weight * explore + c.exploit_weight * exploit
        return {"loss": total, "task": task, "explore": explore, "exploit": exploit, "logits": logits}

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.dispatch(x, self.route(x))[0]

    # ------------------------------------------------------------------------------------------------ reports
    def flops_per_image(self, x: torch.Tensor) -> list[float]:
        """[generator, model 1, ..., model K] FLOPs for one image shaped like ``x[0]`` (FlopCounterMode, cached)."""
        key = tuple(x.shape[1:])
        if key not in self._flops:
            from torch.utils.flop_counter import FlopCounterMode

            was_training = self.training
            self.eval()  # no BN statistics update, no noise
            parts = [self.generator, *self.backbone]
            flops = []
            with torch.no_grad():
                for part in parts:
                    with FlopCounterMode(display=False) as counter:
                        part(x[:1])
                    flops.append(float(counter.get_total_flops()))
            self._flops[key] = flops
            self.train(was_training)
        return self._flops[key]

    @torch.no_grad()
    def routing_statistics(self, batches) -> dict:
        """Pathway usage over ``(x, y)`` batches in eval mode: chosen fraction and mean weight per model, per-class
        choice counts [N][K], routing entropies (nats) and FLOPs per sample spent vs an ensemble of all K."""
        was_training = self.training
        self.eval()
        num = len(self.backbone)
        chosen = torch.zeros(num, dtype=torch.float64)
        weight_sum = torch.zeros(num, dtype=torch.float64)
        per_class = torch.zeros(self.num_classes, num, dtype=torch.long)
        entropy_sum, n, flops = 0.0, 0, None
        for x, y in batches:
            if x.dim() == 5:  # K-crop batch [B, crops, C, H, W]
                x, y = x.flatten(0, 1), y.repeat_interleave(x.shape[1])
            flops = flops or self.flops_per_image(x)
            w = self.route(x).weights.double().cpu()
            used = w > 0
            chosen += used.sum(0)
            weight_sum += w.sum(0)
            if self.task.name == "classification":  # which models each class uses
                per_class.index_add_(0, y.cpu().long(), used.long())
            entropy_sum += float(-(w * w.clamp_min(1e-300).log()).sum())
            n += len(w)
        self.train(was_training)
        if n == 0:
            raise ValueError("routing_statistics needs at least one batch")
        fraction = chosen / n
        usage = fraction / fraction.sum()
        usage_entropy = float(-(usage * usage.clamp_min(1e-300).log()).sum())
        return {
            "experts": list(self.experts),
            "k": self.cfg.k,
            "samples": n,
            "chosen_fraction": fraction.tolist(),  # sums to k
            "mean_weight": (weight_sum / n).tolist(),  # sums to 1
            "per_class": per_class.tolist(),  # [num_classes][K], each row sums to k × that class's samples
            "routing_entropy": {
                "per_sample_mean": entropy_sum / n,
                "usage": usage_entropy,
                "max": math.log(num),
            },
            "flops_per_sample": flops[0] + sum(f * c for f, c in zip(flops[1:], fraction.tolist())),
            "flops_per_sample_ensemble": sum(flops[1:]),  # all K models, no generator
            "flops_generator": flops[0],
            "flops_per_model": dict(zip(self.experts, flops[1:])),
        }

    def artifacts(self) -> dict:
        """Light provenance for the result record (``fit()`` stores it under ``extra``)."""
        return {"hub_pathway": {"experts": list(self.experts), "k": self.cfg.k}}

    def inference_parameters(self) -> list[nn.Parameter]:
        """What a deployed model holds: the generator and all K models with their heads (any input may route to any
        of them), though each input runs only k (``transferlab.perf.cost`` counts these at inference)."""
        return list(self.parameters())

    def test_statistics(self, batches) -> dict:
        """fit() calls this on the test set with the best-validation weights: the routing, saved with the result."""
        return {"routing": self.routing_statistics(batches)}
