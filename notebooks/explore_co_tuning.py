# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exploring Co-Tuning's relationship p(y_s | y_t)
#
# Co-Tuning (You et al., NeurIPS 2020) keeps the pre-trained source head and trains it on soft labels R[y], where
# R = p(y_s | y_t) is learned from the source head's outputs on the target's training and validation images. This
# notebook computes R both ways the official code can — the paper's calibrated **reverse** approach and the **direct**
# class means — for a mini-hub source model on a mini target, and shows them side by side. The pieces are public
# functions of `lib/transferlab/methods/relationship.py` (`reverse_relationship`, `direct_relationship`, `calibrate`,
# `soft_label_loss`). Nothing is trained here; the mini protocol runs on the CPU in seconds.

# %% tags=["parameters"]
source: str = "mini:clusters"  # source model with its head: mini:<hub model> (transferlab hub list)
dataset: str = "mini_fmnist"  # target dataset (transferlab data list)
sample_rate: float = 0.15  # fraction of each target class's training images
val_fraction: float = 0.2  # share of them held out for validation (the reverse approach chooses C on it)
seed: int = 0  # seeds the split

# %%
import transferlab as tl
from transferlab.models.mini_hub import MINI_HUB
from transferlab.reports import plot_relationship

data_cfg = tl.DataConfig(dataset=dataset, sample_rate=sample_rate, val_fraction=val_fraction)
hub_model = MINI_HUB.get(source.removeprefix("mini:"))
source_classes = tl.data.load(hub_model.dataset, "data").classes

# %% [markdown]
# ## The calibrated reverse approach (the paper's main method, the official default)

# %%
cfg = tl.RunConfig(method="co_tuning", pretrained=source, seed=seed, device="cpu", data=data_cfg)
reverse, data = tl.prepared_method(cfg)
print(reverse.info)
fig_reverse = plot_relationship(
    reverse.relationship, data.source.classes, source_classes, "reverse (calibrated)"
)

# %% [markdown]
# ## The direct approach (class means of the source probabilities; TLlib's only approach)

# %%
direct, _ = tl.prepared_method(cfg.replace(method_params={"relationship": "direct"}))
fig_direct = plot_relationship(
    direct.relationship, data.source.classes, source_classes, "direct (class means)"
)

# %%
print(
    "largest absolute difference between the two:",
    float((reverse.relationship - direct.relationship).abs().max()),
)
