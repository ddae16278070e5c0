"""L2T-ww's mini setting end to end: the mini pairs and shapes, the supported settings, φ's checkpointed Adam, and a
run through ``transferlab.run`` on the tiny fixtures that resumes exactly after an interruption."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from resume import assert_resumes_exactly
from transferlab.config import ConfigError, RunConfig
from transferlab.methods.l2t_ww_setup import SETTINGS, resolve
from transferlab.methods.matching import MINI_PAIRS, MINI_RESNET_WIDTHS, MINI_VGG_WIDTHS
from transferlab.methods.meta_grad import MetaAdam
from transferlab.models import build_backbone
from transferlab.tasks.classification import Classification


def _shapes(maps):
    return [tuple(m.shape[1:]) for m in maps]


def test_mini_vgg_and_mini_resnet_feature_maps_fit_the_mini_pairs():
    x = torch.randn(2, 1, 28, 28)
    target = build_backbone("mini_vgg").eval()
    source = build_backbone("mini_resnet").eval()  # the mini hub's architecture (random weights suffice here)
    with torch.no_grad():
        t_maps, s_maps = target.feature_maps(x), source.feature_maps(x)
        assert target(x).shape == (2, 1000) and target.feature_dim == 64
    assert _shapes(t_maps) == [(16, 14, 14), (32, 14, 14), (64, 7, 7), (64, 4, 4)]
    assert _shapes(s_maps) == [(16, 14, 14), (16, 14, 14), (32, 7, 7), (64, 4, 4)]
    assert [m.shape[1] for m in t_maps] == list(MINI_VGG_WIDTHS)
    assert [m.shape[1] for m in s_maps] == list(MINI_RESNET_WIDTHS)
    assert len(MINI_PAIRS) == 12 and {m for m, _ in MINI_PAIRS} == {1, 2, 3}  # the three stage outputs
    assert {n for _, n in MINI_PAIRS} == set(range(len(t_maps)))
    at_pairs = SETTINGS["mini", "mini_vgg"].at_pairs
    assert all(s_maps[m].shape[-2:] == t_maps[n].shape[-2:] for m, n in at_pairs)  # AT: equal sizes
    assert sorted({t_maps[n].shape[-1] for _, n in at_pairs}) == [4, 7, 14]  # one per target resolution


def test_settings_resolve_auto_and_refuse_other_combinations():
    assert resolve("auto", "mini_vgg")[0] == "mini:clusters"
    assert resolve("auto", "vgg9_bn")[0] == "l2t_resnet32"
    assert resolve("mini:parity", "mini_vgg")[1] is SETTINGS["mini", "mini_vgg"]
    for source, target in (
        ("auto", "mini_resnet"),
        ("l2t_resnet32", "mini_vgg"),
        ("mini:clusters", "vgg9_bn"),
    ):
        with pytest.raises(ConfigError, match=r"supported \(source, target\).*mini:<hub model>, mini_vgg"):
            resolve(source, target)
    with pytest.raises(ConfigError, match="not a mini_resnet hub model"):
        resolve("mini:no_such_model", "mini_vgg")


def test_meta_adam_is_torch_adam_bit_for_bit_and_keeps_its_state_in_buffers():
    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(4))]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    ours, ref = MetaAdam(a, lr=1e-2, weight_decay=1e-4), torch.optim.Adam(b, lr=1e-2, weight_decay=1e-4)
    for _ in range(5):
        grads = [torch.randn_like(p) for p in a]
        ours.step(grads)
        for p, g in zip(b, grads):
            p.grad = g.clone()
        ref.step()
    for p, q in zip(a, b):
        assert torch.equal(p, q)
    state = ours.state_dict()
    assert int(state["steps"]) == 5 and set(state) == {
        "steps",
        "exp_avg_0",
        "exp_avg_sq_0",
        "exp_avg_1",
        "exp_avg_sq_1",
    }
    torch.testing.assert_close(state["exp_avg_1"], ref.state[b[1]]["exp_avg"], rtol=0, atol=0)


def _mini_cfg(tiny_config, tiny_hub, method: str, **params) -> RunConfig:
    return tiny_config(
        method=method,
        backbone="mini_vgg",
        pretrained="none",
        nesterov=False,
        weight_decay=1e-4,
        method_params={"source": f"mini:{tiny_hub}", **params},
    )


def test_the_mini_setting_builds_from_a_run_config(tiny_config, tiny_hub):
    from transferlab.methods import METHODS

    method = METHODS.get("l2t_ww").build(_mini_cfg(tiny_config, tiny_hub, "l2t_ww"), Classification(4))
    assert method.pairs == MINI_PAIRS and len(method.matching.convs) == 12
    assert method.source.kind == "stages" and not any(p.requires_grad for p in method.source.parameters())
    assert method.artifacts()["l2t_source"] == f"mini:{tiny_hub}" and method.artifacts()["l2t_source_sha256"]
    assert any(
        k.startswith("meta_optimizer.exp_avg_") for k in method.state_dict()
    )  # checkpointed with fit()
    at = METHODS.get("at").build(_mini_cfg(tiny_config, tiny_hub, "at"), Classification(4))
    assert at.pairs == ((1, 1), (2, 2), (3, 3))
    x, y = torch.randn(3, 1, 28, 28), torch.tensor([0, 1, 3])
    method.train()
    out = method.loss(x, y)
    assert out["logits"].shape == (3, 4) and torch.isfinite(out["loss"]) and out["transfer"] > 0
    with pytest.raises(ConfigError, match="supported"):
        METHODS.get("l2t_ww").build(
            _mini_cfg(tiny_config, tiny_hub, "l2t_ww").replace(backbone="mini_resnet"), 4
        )


@pytest.mark.parametrize("method", ["l2t_ww", "l2t_w", "fm", "at"])
def test_a_mini_l2t_run_trains_logs_its_terms_and_resumes_exactly(method, tiny_config, tiny_hub, tmp_path):
    import transferlab as tl

    cfg = _mini_cfg(tiny_config, tiny_hub, method)
    result = tl.run(cfg, out_dir=tmp_path / "a")
    last = result.history[-1]
    assert np.isfinite(last["train_loss"]) and last["train_transfer"] > 0
    assert ("train_meta_outer_ce" in last) == (method in ("l2t_ww", "l2t_w"))
    assert 0 <= result.metrics["test_at_best_val"] <= 100
    assert result.extra["l2t_source"] == f"mini:{tiny_hub}"

    # interrupted after the step-4 checkpoint (φ's Adam moments are non-zero by then), it resumes exactly
    assert_resumes_exactly(cfg, tmp_path / "b", result)


def test_the_mini_table_declares_every_row_with_valid_settings():
    """Every row of the mini table is a valid configuration (the rows themselves run in the method contract test and
    in ``make demo``); the paper's own tables stay declared."""
    from transferlab.papers import PAPERS

    paper = PAPERS.get("l2t_ww")
    table = paper.table("limited", "mini")
    cells = table.cells(paper="l2t_ww")
    assert all(c.available for c in cells) and len(cells) == 6 * len(table.seeds)
    assert {c.params["method"] for c in cells} == {"scratch", "l2t_lwf", "at", "fm", "l2t_w", "l2t_ww"}
    for c in cells:
        cfg = c.config()
        assert cfg.backbone == "mini_vgg" and cfg.pretrained == "none" and not cfg.optim.nesterov
    for name in ("cifar", "cifar10_limited", "imagenet224"):  # the paper's tables stay declared
        assert paper.table(name, "paper").provenance


def test_lwf_for_a_different_architecture_target_distils_the_source_outputs(tiny_config, tiny_hub, tmp_path):
    """LwF's loss with an old-task head on the target: CE + λ·KD_T(h_o(g(x)), f_s(x)); the source stays frozen."""
    import transferlab as tl
    from transferlab.methods import METHODS
    from transferlab.methods.regularizers import kd_loss

    cfg = _mini_cfg(tiny_config, tiny_hub, "l2t_lwf")
    method = METHODS.get("l2t_lwf").build(cfg, Classification(4))
    assert method.old_head.out_features == method.source.num_classes == method.source.logits(
        torch.zeros(1, 1, 28, 28)).shape[1]  # fmt: skip
    assert not any(p.requires_grad for p in method.source.parameters())
    method.train()
    x, y = torch.randn(5, 1, 28, 28), torch.tensor([0, 1, 2, 3, 0])
    out = method.loss(x, y)
    f = method.backbone.features(x)
    kd = kd_loss(method.old_head(f), method.source.logits(x), 2.0, True)
    torch.testing.assert_close(out["kd"], kd)
    torch.testing.assert_close(out["loss"], out["ce"] + kd)
    out["loss"].backward()
    assert method.old_head.weight.grad.abs().sum() > 0 and method.backbone.head.weight.grad.abs().sum() > 0
    groups = method.param_groups(cfg.optim)
    assert len(groups) == 1 and groups[0]["lr_mult"] == 1.0  # trained from scratch: everything at the base lr
    result = tl.run(cfg, out_dir=tmp_path / "a")
    assert (
        result.history[-1]["train_kd"] > 0 and result.extra["old_task_classes"] == method.source.num_classes
    )
    assert_resumes_exactly(cfg, tmp_path / "b", result)
