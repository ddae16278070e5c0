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
# # Learning What and Where to Transfer, L2T-ww (Jang et al., ICML 2019)
#
# Meta-learned feature matching: a "what" network weights the source channels, a "where" network weights each
# (source layer, target layer) pair; both are trained through the target's look-ahead updates.
#
# One cell of a table of the paper spec `lib/transferlab/papers/l2t_ww.py`. Run top to bottom for a mini run (CPU, embedded data), edit the
# parameters to explore, or let the batch runner inject table cells: `transferlab run l2t_ww --table limited --protocol mini`.
#
# Status and known deviations:
#
# - Implemented (`lib/transferlab/methods/l2t_ww.py`, `matching.py`, `meta_grad.py`; golden-checked
#   against the official code): L2T-ww, L2T-w, FM, AT and scratch, with the official per-batch schedule
#   (one real step, T + 1 look-ahead steps differentiated for φ, rollback). Settings: 32×32 (TinyImageNet
#   ResNet-32 → `vgg9_bn`), 224×224 (ResNet-34 → ResNet-18) and the mini one below (mini hub ResNet-8
#   `mini:fmnist_full` → `mini_vgg`, 12 pairs, transferlab's choice).
# - LwF (`l2t_lwf`): the target keeps the source's answers through an extra old-task head (LwF's loss for a
#   different-architecture target from scratch; how the paper configured its LwF row is not known).
# - The paper's result tables are not transcribed (only Stanford 40 = 63.08). φ's Adam state is checkpointed:
#   resumed runs are exact.
# - Mini deviations: 100 iterations (an L2T-ww step costs ~20× a plain one on the CPU), lr 0.05, N = 25
#   images per class. Mini-protocol numbers come from embedded CPU-scale data and are never comparable
#   to published numbers.

# %% tags=["parameters"]
paper: str = "l2t_ww"  # paper (transferlab.papers) whose table this run belongs to
table: str = "adhoc"  # table name inside the paper ("adhoc" for interactive runs)
protocol: str = "mini"  # mini (embedded, CPU, minutes) | paper (real data and weights, GPU)
method: str = "l2t_ww"  # l2t_ww | l2t_w | fm | at | l2t_lwf | scratch (transferlab.methods.METHODS)
backbone: str = "mini_vgg"  # target network, trained from scratch: mini_vgg | vgg9_bn | resnet18
pretrained: str = "none"  # target weights: "none" (from scratch; the source is method_params["source"])
seed: int = 0  # seeds data sampling, initialisation and augmentation
precision: str = "auto"  # auto (bf16 autocast on GPU, fp32 on CPU) | bf16 | fp32
device: str = "auto"  # auto | cpu | cuda | cuda:N (run-time only)
method_params: dict = {}  # e.g. {"source": "mini:fmnist_full", "T": 2, "pairs": "auto", "meta_lr": 1e-4}
dataset: str = "mini_fmnist"  # registered dataset name (transferlab.data.DATASETS)
data_root: str = "data"  # where real datasets live (run-time only)
sample_rate: float = 1.0  # fraction of each class's training images kept, in (0, 1] (1.0 when shots is set)
shots: int = 25  # N images per class (the limited-data setting) instead of a rate (0: use sample_rate)
val_fraction: float = 0.1  # share of the sampled train set carved out per class for validation
batch_size: int = 32  # training batch size
eval_batch_size: int = 1024  # batch size for validation and test
preset: str = "auto"  # transform preset (transferlab.data.TRANSFORMS); auto: the dataset's default
ten_crop: bool = False  # 10-crop test-time evaluation (the papers' protocol at 224 px)
num_workers: int = 0  # DataLoader workers for file-based datasets (run-time only)
optimizer: str = "sgd"  # sgd | adam
lr: float = 0.05  # base learning rate (backbone)
momentum: float = 0.9  # SGD momentum (Adam: beta1)
weight_decay: float = 1e-4  # L2 weight decay, applied by the optimizer (train_l2t_ww.py: 1e-4)
nesterov: bool = False  # Nesterov momentum for SGD (L2T-ww's look-ahead steps replay plain momentum SGD)
head_lr_mult: float = 1.0  # lr multiplier of newly initialised parameters (the target head)
schedule: str = "cosine"  # constant | multistep | cosine
milestones: list = []  # multistep: iterations at which lr is multiplied by gamma
gamma: float = 0.1  # multistep decay factor
warmup_steps: int = 0  # linear warm-up iterations before the schedule
iterations: int = 100  # total optimisation steps (mini: cut from 300, see the header)
eval_every: int = 20  # evaluate on validation every N steps (and at the last step)
checkpoint_every: int = 0  # save a resumable checkpoint every N steps (0: at every evaluation; run-time only)
out_dir: str = ""  # run directory; "" means results/<paper>/<protocol>/<run_id>

# %%
import transferlab as tl
from transferlab import reports

cfg = tl.RunConfig.from_namespace(globals())
print(cfg.run_id())

# %%
result = tl.run(cfg, out_dir or None)
print(result.summary())

# %%
reports.plot_curves([result])
