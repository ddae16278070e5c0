"""L2T-ww's pieces: golden checks against the official code's outputs (``../shared/anchors``, README §4) and
property tests of the rest (pairs, VGG9-BN, meta-gradients, the per-batch schedule).

Golden tests skip cleanly where the anchors folder is absent. Tolerances are the anchors README's (§5).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from golden import anchor, anchor_path
from transferlab.methods.matching import (
    CIFAR_PAIRS,
    IMAGENET_PAIRS,
    RESNET32_WIDTHS,
    RESNET_IMAGENET_WIDTHS,
    VGG9_WIDTHS,
    ChannelWeights,
    FeatureMatching,
    PairWeights,
    attention_transfer_loss,
    parse_pairs,
    resize_like,
)
from transferlab.methods.meta_grad import SGDHyper, hypers_from_optimizer, unrolled_meta_gradient
from transferlab.models.l2t_ww_source import block_feature_maps, load_l2t_resnet32, remap_key
from transferlab.models.vgg import VGG9BN
from transferlab.tasks.classification import Classification

F64 = {"rtol": 1e-10, "atol": 1e-12}


def t(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def load_params(module: torch.nn.Module, a: dict, prefix: str, names: dict[str, str]) -> None:
    """Copy ``a[prefix + official]`` into ``module`` parameter ``ours`` for each (ours → official) name."""
    with torch.no_grad():
        for ours, official in names.items():
            module.get_parameter(ours).copy_(torch.from_numpy(a[prefix + official]))


# ------------------------------------------------------------------------------------------------ weight networks
def test_golden_channel_weights_outputs_and_gradients():
    a = anchor("l2t_ww_weightnets")
    pairs = [tuple(p) for p in a["pairs"].tolist()]
    assert pairs == list(CIFAR_PAIRS) and tuple(a["source_widths"]) == RESNET32_WIDTHS
    net = ChannelWeights(pairs, RESNET32_WIDTHS).double()
    names = {f"linears.{i}.{w}": f"{i}.{w}" for i in range(len(pairs)) for w in ("weight", "bias")}
    load_params(net, a, "wnet.param.", names)
    feats = {m: t(a[f"source_feat.{m}"], grad=True) for m in (4, 9, 14)}
    out = net(feats)
    total = sum((o * t(a[f"wnet.cotangent.{i}"])).sum() for i, o in enumerate(out))
    total.backward()
    for i, o in enumerate(out):
        np.testing.assert_allclose(o.detach().numpy(), a[f"wnet.out.{i}"], **F64)
        for w in ("weight", "bias"):
            grad = net.linears[i].get_parameter(w).grad.numpy()
            np.testing.assert_allclose(grad, a[f"wnet.grad.{i}.{w}"], **F64)
    for m, f in feats.items():
        np.testing.assert_allclose(f.grad.numpy(), a[f"wnet.grad_source_feat.{m}"], **F64)


@pytest.mark.parametrize("kind", ["relu", "relu-avg", "relu6", "const"])
def test_golden_pair_weights_outputs_and_gradients(kind):
    a = anchor("l2t_ww_weightnets")
    pairs = [tuple(p) for p in a["pairs"].tolist()]
    net = PairWeights(pairs, RESNET32_WIDTHS, kind=kind, init=1.0).double()
    key = f"lwnet_{kind}."
    if kind == "const":
        load_params(net, a, key, {"const": "param.weights"})
    else:
        names = {f"linears.{i}.{w}": f"param.{i}.{w}" for i in range(len(pairs)) for w in ("weight", "bias")}
        load_params(net, a, key, names)
    feats = {m: t(a[f"source_feat.{m}"], grad=True) for m in (4, 9, 14)}
    out = net(feats)
    total = sum((o * t(a[f"{key}cotangent.{i}"])).sum() for i, o in enumerate(out))
    total.backward()
    for i, o in enumerate(out):
        np.testing.assert_allclose(o.detach().numpy(), a[f"{key}out.{i}"], **F64)
    if kind == "const":
        np.testing.assert_allclose(net.const.grad.numpy(), a[f"{key}grad.weights"], **F64)
        return
    for i, lin in enumerate(net.linears):
        for w in ("weight", "bias"):
            np.testing.assert_allclose(lin.get_parameter(w).grad.numpy(), a[f"{key}grad.{i}.{w}"], **F64)
    for m, f in feats.items():
        np.testing.assert_allclose(f.grad.numpy(), a[f"{key}grad_source_feat.{m}"], **F64)
    if kind == "relu6":  # the fixture exercises all three regions of ReLU6
        values = np.concatenate([a[f"{key}out.{i}"].ravel() for i in range(len(pairs))])
        assert (values == 0).any() and (values == 6).any() and ((values > 0) & (values < 6)).any()


def test_weight_networks_official_initialisation():
    feats = [torch.randn(2, c, 4, 4) for c in RESNET_IMAGENET_WIDTHS]
    for w, (m, _) in zip(ChannelWeights(IMAGENET_PAIRS, RESNET_IMAGENET_WIDTHS)(feats), IMAGENET_PAIRS):
        torch.testing.assert_close(
            w, torch.full((2, RESNET_IMAGENET_WIDTHS[m]), 1 / RESNET_IMAGENET_WIDTHS[m])
        )
    lw = PairWeights(IMAGENET_PAIRS, RESNET_IMAGENET_WIDTHS)
    assert lw.kind == "relu6" and all(lin.bias.item() == 1.0 for lin in lw.linears)
    const = PairWeights(IMAGENET_PAIRS, RESNET_IMAGENET_WIDTHS, kind="const")(feats)
    torch.testing.assert_close(torch.cat(const).ravel(), torch.full((16,), float(np.log(2))))
    with pytest.raises(ValueError, match="relu6"):
        PairWeights(IMAGENET_PAIRS, RESNET_IMAGENET_WIDTHS, kind="sigmoid6")


# ------------------------------------------------------------------------------------------------ matching loss
COMBOS = {"none": (False, False), "weight": (True, False), "loss_weight": (False, True), "both": (True, True)}


@pytest.mark.parametrize("combo", list(COMBOS))
def test_golden_feature_matching_loss_and_gradients(combo):
    a = anchor("l2t_ww_feature_matching")
    pairs = [tuple(p) for p in a["pairs"].tolist()]
    fm = FeatureMatching(pairs, a["source_widths"].tolist(), a["target_widths"].tolist()).double()
    names = {f"convs.{i}.{w}": f"{i}.{w}" for i in range(len(pairs)) for w in ("weight", "bias")}
    load_params(fm, a, "branch.param.", names)
    src = {m: t(a[f"source_feat.{m}"]) for m in (4, 9, 14)}
    tgt = {n: t(a[f"target_feat.{n}"], grad=True) for n in range(4)}
    use_w, use_lw = COMBOS[combo]
    w = [t(a[f"weight.{i}"], grad=True) for i in range(len(pairs))]
    lw = [t(a[f"loss_weight.{i}"], grad=True) for i in range(len(pairs))]
    loss = fm(src, tgt, w if use_w else None, lw if use_lw else None, beta=a["beta"].tolist())
    loss.backward()
    np.testing.assert_allclose(loss.item(), a[f"{combo}.loss"], **F64)
    for i, conv in enumerate(fm.convs):
        for name in ("weight", "bias"):
            grad = conv.get_parameter(name).grad.numpy()
            np.testing.assert_allclose(grad, a[f"{combo}.grad.branch.{i}.{name}"], **F64)
        if use_w:
            np.testing.assert_allclose(w[i].grad.numpy(), a[f"{combo}.grad.weight.{i}"], **F64)
        if use_lw:
            np.testing.assert_allclose(lw[i].grad.numpy(), a[f"{combo}.grad.loss_weight.{i}"], **F64)
    for n, f in tgt.items():
        np.testing.assert_allclose(f.grad.numpy(), a[f"{combo}.grad.target_feat.{n}"], **F64)


def test_golden_bilinear_resize_of_source_maps():
    a = anchor("l2t_ww_feature_matching")
    sizes = a["target_sizes"]
    for i, (m, n) in enumerate(a["pairs"].tolist()):
        if f"resized_source.{i}" in a:
            out = resize_like(t(a[f"source_feat.{m}"]), (int(sizes[n]), int(sizes[n])))
            np.testing.assert_allclose(out.numpy(), a[f"resized_source.{i}"], **F64)


def test_candidate_pairs_match_the_official_defaults():
    official_224 = (
        "4-4,4-3,4-2,4-1,3-4,3-3,3-2,3-1,2-4,2-3,2-2,2-1,1-4,1-3,1-2,1-1"  # train_l2t_ww.py --pairs
    )
    assert parse_pairs(official_224) == IMAGENET_PAIRS and len(set(IMAGENET_PAIRS)) == 16
    assert parse_pairs(",".join(f"{m}-{n}" for m in (4, 9, 14) for n in range(5))) == CIFAR_PAIRS
    with pytest.raises(ValueError, match="4-0"):
        parse_pairs("4:0")


def test_matching_is_zero_when_the_target_reproduces_the_source_and_ignores_uniform_weights():
    fm = FeatureMatching([(0, 0)], [8], [8])
    with torch.no_grad():
        fm.convs[0].weight.copy_(torch.eye(8)[:, :, None, None])
        fm.convs[0].bias.zero_()
    x = torch.randn(3, 8, 4, 4)
    assert fm([x], [x]).item() == 0.0
    y = torch.randn(3, 8, 4, 4)
    uniform = [torch.full((3, 8), 1 / 8)]
    torch.testing.assert_close(fm([x], [y], uniform), fm([x], [y]))  # Σ_c d/C = mean_c d
    torch.testing.assert_close(fm([x], [y], beta=1.0), 2 * fm([x], [y], beta=0.5))


def test_attention_transfer_is_zero_on_identical_maps_and_positive_otherwise():
    s = [torch.rand(2, 16, 8, 8)]
    assert attention_transfer_loss(s, [s[0] * 3.0], [(0, 0)]).item() < 1e-12  # scale-invariant
    assert attention_transfer_loss(s, [torch.rand(2, 32, 4, 4)], [(0, 0)]).item() > 0  # resized source


# ------------------------------------------------------------------------------------------------ meta-gradient
def toy_meta_gradient(a: dict, dtype: torch.dtype):
    """The official built-in toy problem of MetaSGD (anchors README §4.3), on our unrolled autograd."""
    v1 = torch.tensor(a["v1_init"], dtype=dtype, requires_grad=True)
    v2 = torch.tensor(a["v2_init"], dtype=dtype, requires_grad=True)
    lmbd = torch.tensor(a["lmbd_init"], dtype=dtype, requires_grad=True)
    hyper = SGDHyper(float(a["lr"]), float(a["momentum"]), float(a["weight_decay"]))

    def inner(theta):
        return theta[0].pow(2).mean() + (lmbd * theta[1].pow(2)).sum()

    def outer(theta):
        return (theta[0] * theta[1]).mean()

    res = unrolled_meta_gradient(
        [v1, v2],
        [None, None],
        [hyper, hyper],
        [inner] * int(a["n_steps"]),
        outer,
        [lmbd],
        keep_trajectory=True,
    )
    assert v1.tolist() == a["v1_init"].tolist()  # functional: nothing written back
    return res


@pytest.mark.parametrize("prec", ["f64", "f32"])
def test_golden_meta_sgd_toy_problem(prec):
    a = anchor("l2t_ww_metasgd_toy")
    dtype, tol = (torch.float64, F64) if prec == "f64" else (torch.float32, {"rtol": 1e-5, "atol": 1e-6})
    res = toy_meta_gradient(a, dtype)
    np.testing.assert_allclose(res.meta_grads[0].numpy(), a[f"{prec}_lmbd_grad"], **tol)
    traj = np.stack([torch.cat([p.ravel() for p in step]).numpy() for step in res.trajectory])
    np.testing.assert_allclose(traj, a[f"{prec}_trajectory"], **tol)
    final = torch.cat([p.ravel() for p in res.params]).numpy()
    np.testing.assert_allclose(final, a[f"{prec}_params_after_meta"], **tol)  # rollback=False leaves θ_K
    np.testing.assert_allclose(res.meta_grads[0].numpy(), a["builtin_printed_values"], atol=1e-4)


def test_meta_gradient_matches_finite_differences_with_momentum_state_and_decay():
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2).double()
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    phi = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    params = list(lin.parameters())
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-2)
    F.mse_loss(lin(x), y).backward()
    opt.step()  # the unrecorded first step: momentum buffers exist
    hypers, bufs = hypers_from_optimizer(opt, params)

    def run(p):
        def inner(th):
            out = torch.func.functional_call(lin, {"weight": th[0], "bias": th[1]}, (x,))
            return (p.exp() * (out - y).pow(2).mean(0)).sum()

        def outer(th):
            return F.mse_loss(
                torch.func.functional_call(lin, {"weight": th[0], "bias": th[1]}, (x,)), 0.5 * y
            )

        return unrolled_meta_gradient(params, bufs, hypers, [inner, inner, outer], outer, [p])

    grad = run(phi).meta_grads[0]
    eps = 1e-6
    for k in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[k] = eps
        fd = (run(phi + e).outer_loss - run(phi - e).outer_loss) / (2 * eps)
        torch.testing.assert_close(grad[k], fd, rtol=1e-6, atol=1e-9)


def test_optimizer_with_nesterov_is_refused():
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="nesterov"):
        hypers_from_optimizer(torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True), [p])


# ------------------------------------------------------------------------------------------------ networks
def test_golden_resnet32_checkpoint_forward_in_float64():
    a = anchor("l2t_ww_resnet32_checkpoint")
    net, meta = load_l2t_resnet32(anchor_path("l2t_ww_tinyimagenet_resnet32.pth.tar"))
    assert meta == {"epoch": 104, "best": 49.27, "test_prec": 49.15, "num_classes": 200}
    official = [k for k in a["keys"].tolist()]
    assert sorted(remap_key(k) for k in official) == sorted(net.state_dict())  # 201 keys, 1:1
    net = net.double()
    with torch.no_grad():
        logits, feats = block_feature_maps(net, t(a["x"]))
        plain = net(t(a["x"]))
    tol = {"rtol": 1e-10, "atol": 1e-10}
    np.testing.assert_allclose(logits.numpy(), a["logits"], **tol)
    np.testing.assert_allclose(plain.numpy(), a["logits"], **tol)
    assert [list(f.shape) for f in feats] == a["feat_shapes"].tolist()
    for i in (0, 4, 5, 9, 10, 14):
        np.testing.assert_allclose(feats[i].numpy(), a[f"feat.{i}"], **tol)


def test_resnet32_checkpoint_errors_name_the_keys(tmp_path):
    path = anchor_path("l2t_ww_tinyimagenet_resnet32.pth.tar")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    del ckpt["state_dict"]["fc.bias"]
    ckpt["state_dict"]["extra.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.pth.tar"
    torch.save(ckpt, bad)
    with pytest.raises(Exception, match=r"missing keys \['fc.bias'\].*unexpected keys \['extra.weight'\]"):
        load_l2t_resnet32(bad, check_sha256=False)
    with pytest.raises(Exception, match="sha256"):
        load_l2t_resnet32(bad)


def test_vgg9_bn_feature_maps_head_and_backbone_wrapping():
    from transferlab.models import Backbone

    net = VGG9BN(num_classes=7)
    x = torch.randn(2, 3, 32, 32)
    maps = net.feature_maps(x)
    assert [tuple(m.shape[1:]) for m in maps] == [(c, s, s) for c, s in zip(VGG9_WIDTHS, (32, 16, 8, 4, 2))]
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    assert all(c.bias is not None for c in convs)
    bb = Backbone(net, "vgg9_bn")
    bb.eval()
    with torch.no_grad():
        torch.testing.assert_close(bb(x), net.eval()(x))
        assert [m.shape for m in bb.feature_maps(x)] == [m.shape for m in net.feature_maps(x)]
        torch.testing.assert_close(bb.features(x), F.max_pool2d(net.feature_maps(x)[-1], 2).flatten(1))
    assert bb.feature_dim == 512


# ------------------------------------------------------------------------------------------------ methods
def tiny_method(name: str, T: int = 2, bn_stats: str = "clean", **cfg):
    """A float64 L2T-ww family method on tiny CIFAR ResNets (source maps 4@8², 4@8², 8@4², 8@2²)."""
    import transferlab.methods.l2t_ww as l2t
    from transferlab.methods import METHODS
    from transferlab.models import Backbone
    from transferlab.models.cifar_resnet import CifarResNet

    torch.manual_seed(0)
    source = l2t.FrozenSource(Backbone(CifarResNet(8, (4, 8, 8), 5), "source"), "stages")
    target = Backbone(CifarResNet(8, (4, 6, 8), 10), "target")
    target.reset_head(3, keep_source=False)
    cls = METHODS.get(name)
    config = cls.Config(T=T, bn_stats=bn_stats, meta_lr=1e-2, **cfg)
    method = cls(
        target,
        Classification(3),
        config,
        source,
        ((1, 1), (2, 2), (3, 1), (2, 3)),
        (4, 4, 8, 8),
        (4, 4, 6, 8),
    )
    method.double().train()
    opt = torch.optim.SGD(method.param_groups(None)[0]["params"], lr=0.1, momentum=0.9, weight_decay=1e-4)
    x, y = torch.randn(4, 3, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2, 1])
    return method, opt, x, y


def count_real_steps(opt: torch.optim.Optimizer, method) -> dict:
    """Wrap ``opt.step``: count calls, snapshot θ and momentum buffers right after each."""
    seen = {"calls": 0}
    step = opt.step

    def wrapped(*args, **kwargs):
        out = step(*args, **kwargs)
        seen["calls"] += 1
        seen["params"] = {k: p.detach().clone() for k, p in method.target_named_parameters()}
        seen["bufs"] = {
            k: opt.state[p]["momentum_buffer"].clone() for k, p in method.target_named_parameters()
        }
        seen["bn"] = {k: v.clone() for k, v in method.backbone.named_buffers()}
        return out

    opt.step = wrapped
    return seen


@pytest.mark.parametrize("T", [0, 2])
def test_l2t_ww_step_takes_T_plus_2_updates_and_rolls_back_params_and_momentum(T, monkeypatch):
    import transferlab.methods.meta_grad as mg

    method, opt, x, y = tiny_method("l2t_ww", T=T)
    seen = count_real_steps(opt, method)
    lookahead = {"steps": 0}
    sgd_step = mg.sgd_step

    def counting(*args, **kwargs):
        lookahead["steps"] += 1
        return sgd_step(*args, **kwargs)

    monkeypatch.setattr(mg, "sgd_step", counting)
    phi_before = [p.detach().clone() for p in method.meta_parameters()]
    out = method.train_step(x, y, opt)
    assert seen["calls"] == 1 and lookahead["steps"] == T + 1  # T + 2 target updates, one of them real
    assert {"loss", "ce", "transfer", "logits", "meta_outer_ce"} <= set(out)
    for k, p in method.target_named_parameters():  # rollback: exactly the post-step-1 state
        assert torch.equal(p, seen["params"][k]), k
        assert torch.equal(opt.state[p]["momentum_buffer"], seen["bufs"][k]), k
    for k, v in method.backbone.named_buffers():  # bn_stats="clean"
        assert torch.equal(v, seen["bn"][k]), k
    # φ reaches the outer CE only through the matching-only steps: with T = 0 its meta-gradient is zero
    assert any(g.abs().sum() > 0 for g in method.last_meta_grads) == (T > 0)
    assert any(not torch.equal(a, b) for a, b in zip(phi_before, method.meta_parameters()))  # Adam moved φ


def reference_outer_ce(method, opt, x, y, phi: list[torch.Tensor], theta0: dict, bufs0: dict) -> float:
    """CE after T matching steps and one CE step taken by a real torch SGD from (θ_0, v_0), with φ = ``phi``."""
    import copy

    m = copy.deepcopy(method)
    with torch.no_grad():
        for p, v in zip(m.meta_parameters(), phi):
            p.copy_(v)
        for k, p in m.target_named_parameters():
            p.copy_(theta0[k])
    params = dict(m.target_named_parameters())
    sgd = torch.optim.SGD(list(params.values()), lr=0.1, momentum=0.9, weight_decay=1e-4)
    for k, p in params.items():
        sgd.state[p]["momentum_buffer"] = bufs0[k].clone()
    src = m.source(x)
    for step in range(m.cfg.T + 1):
        sgd.zero_grad(
            set_to_none=False
        )  # zero-filled grads: every parameter decays and moves, as the official
        for p in params.values():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        with torch.no_grad():
            w, lam = m.meta_weights(src)
        logits, transfer = m(x, src, w, lam)
        (transfer if step < m.cfg.T else F.cross_entropy(logits, y)).backward()
        sgd.step()
    return F.cross_entropy(m(x)[0], y).item()


@pytest.mark.parametrize("name", ["l2t_ww", "l2t_w"])
def test_meta_gradient_is_the_derivative_of_the_lookahead_from_the_post_step_1_state(name):
    method, opt, x, y = tiny_method(name)
    seen = count_real_steps(opt, method)
    phi = [p.detach().clone() for p in method.meta_parameters()]
    method.train_step(x, y, opt)
    grads = method.last_meta_grads
    torch.manual_seed(1)
    u = [torch.randn_like(p) for p in phi]
    eps = 1e-5

    def f(sign: float) -> float:
        shifted = [p + sign * eps * d for p, d in zip(phi, u)]
        return reference_outer_ce(method, opt, x, y, shifted, seen["params"], seen["bufs"])

    fd = (f(1.0) - f(-1.0)) / (2 * eps)
    analytic = sum((g * d).sum() for g, d in zip(grads, u)).item()
    assert abs(analytic) > 1e-8
    np.testing.assert_allclose(
        analytic, fd, rtol=1e-8
    )  # float64 throughout (v1 took the look-ahead CE in float32: off by 1e-8 to 3e-8 here)


def test_bn_statistics_official_keep_one_extra_update_per_batch():
    for mode, per_batch in (("official", 2), ("clean", 1)):
        method, opt, x, y = tiny_method("l2t_ww", bn_stats=mode)
        method.train_step(x, y, opt)
        method.train_step(x, y, opt)
        assert int(method.backbone.stem[1].num_batches_tracked) == 2 * per_batch, mode


@pytest.mark.parametrize("name", ["fm", "at", "l2t_w"])
def test_baselines_train_with_one_optimizer_step(name):
    method, opt, x, y = tiny_method(name, pairs="auto")
    if name == "at":
        method.pairs = ((1, 1), (2, 2))
    seen = count_real_steps(opt, method)
    out = method.train_step(x, y, opt)
    assert seen["calls"] == 1 and torch.isfinite(out["loss"]) and out["transfer"] > 0
    assert method.predict(x).shape == (4, 3)
    assert (method.lwnet is None) and ((method.wnet is None) == (name != "l2t_w"))
    assert (method.matching is None) == (name == "at")
    assert method.meta == (name == "l2t_w")


def test_l2t_ww_builds_the_cifar_setting_from_a_run_config():
    from transferlab.config import RunConfig

    path = anchor_path("l2t_ww_tinyimagenet_resnet32.pth.tar")
    run = RunConfig(method="l2t_ww", backbone="vgg9_bn", pretrained="none",
                    method_params={"source_checkpoint": str(path)})  # fmt: skip
    method = __import__("transferlab.methods.l2t_ww", fromlist=["L2TWW"]).L2TWW.build(run, Classification(10))
    assert method.pairs == CIFAR_PAIRS and len(method.matching.convs) == 15
    assert method.source.kind == "blocks" and not method.source.training
    method.train()
    assert not method.source.training and not any(p.requires_grad for p in method.source.parameters())
    params = {id(p) for g in method.param_groups(None) for p in g["params"]}
    assert not params & {id(p) for p in method.meta_parameters()}
    assert not params & {id(p) for p in method.source.parameters()}
    x = torch.randn(2, 3, 32, 32)
    out = method.loss(x, torch.tensor([1, 2]))
    assert out["logits"].shape == (2, 10) and torch.isfinite(out["loss"])
