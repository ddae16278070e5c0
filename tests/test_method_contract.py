"""The contract every registered method keeps, checked for each one automatically (a new method is covered the moment
it is registered): its preconditions are checked before anything loads, it builds on the (tiny) mini hub, prepares,
takes one finite training step, predicts the task's outputs, round-trips its state exactly, and reports JSON
artifacts."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from conftest import TINY_ZOO
from transferlab import api
from transferlab.config import ConfigError
from transferlab.methods import METHODS
from transferlab.train import make_optimizer

# RL methods (task "rl") keep their own contract: tests/test_rl.py
BUILT_IN = [m for m in METHODS.names() if not m.startswith("tests_") and "rl" not in METHODS.get(m).tasks]


def _config(method: str, tiny_config, tiny_hub):
    cls = METHODS.get(method)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    if cls.weights == "hub":
        return tiny_config(method=method, pretrained=f"hub:{TINY_ZOO}", iterations=2, eval_every=2)
    if "source" in fields:  # L2T-ww's family: a target from scratch, a frozen source of its own
        return tiny_config(method=method, backbone="mini_vgg", pretrained="none", nesterov=False,
                           method_params={"source": f"mini:{tiny_hub}"}, iterations=2, eval_every=2)  # fmt: skip
    pretrained = "none" if cls.weights == "forbidden" else f"mini:{tiny_hub}"
    return tiny_config(method=method, pretrained=pretrained, iterations=2, eval_every=2)


def _wrong_weights(method: str, tiny_hub) -> dict:
    """A ``pretrained`` the method must refuse when the configuration is checked."""
    kind = METHODS.get(method).weights
    return {"hub": {"pretrained": f"mini:{tiny_hub}"}, "forbidden": {"pretrained": f"mini:{tiny_hub}"},
            "required": {"pretrained": "none"}}[kind]  # fmt: skip


@pytest.mark.parametrize("method", BUILT_IN)
def test_the_method_contract(method, tiny_config, tiny_hub, tiny_zoo, tmp_path):
    cls = METHODS.get(method)
    cfg = _config(method, tiny_config, tiny_hub)
    assert cfg.method_params == dataclasses.asdict(cls.Config(**cfg.method_params))  # defaults spelled out
    assert cls.name == method and cls.paper and "classification" in cls.tasks

    with pytest.raises(ConfigError):  # preconditions, before anything is loaded
        tiny_config(**{**cfg.to_flat(), **_wrong_weights(method, tiny_hub), "method_params": {}})
    with pytest.raises(ConfigError, match=rf"method '{method}' has no parameter\(s\) \['not_a_parameter'\]"):
        tiny_config(method=method, method_params={"not_a_parameter": 1})

    torch.manual_seed(0)
    first, data = api.prepared_method(cfg, root=tmp_path)
    x, y = next(iter(data.train()))
    first.train()
    optimizer = make_optimizer(first, cfg)
    out = first.train_step(x[:8], y[:8], optimizer)
    assert torch.isfinite(out["loss"]) and out["logits"].shape[0] == 8
    first.eval()
    with torch.no_grad():
        predicted = first.predict(x[:8])
    assert predicted.shape == (8, first.task.outputs)

    torch.manual_seed(1)  # another initialisation: the state alone must restore the model
    second, _ = api.prepared_method(cfg, root=tmp_path)
    second.load_state_dict(first.state_dict())
    second.eval()
    with torch.no_grad():
        assert torch.equal(second.predict(x[:8]), predicted)
    json.dumps(first.artifacts())  # provenance is plain JSON
