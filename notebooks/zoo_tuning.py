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
# # Zoo-Tuning: Adaptive Transfer from a Zoo of Models (Shu et al., ICML 2021)
#
# Every convolution aggregates the K source kernels with per-sample gates computed from its input (adaptive
# aggregation), so one network carries the whole zoo; the lite variant collapses to a single model for inference.
#
# One cell of a table of the paper spec `lib/transferlab/papers/zoo_tuning.py`. Run top to bottom for a mini run (CPU, embedded data), edit the
# parameters to explore, or let the batch runner inject table cells: `transferlab run zoo_tuning --table classification`.
#
# Status and known deviations:
#
# - Implemented: Zoo-Tuning and lite Zoo-Tuning (golden-checked aggregation layers, `collapse()` for lite), and the
#   multi-model baselines: each hub model fine-tuned alone (`finetune` with `pretrained="mini:<model>"`; the report
#   derives the best single model by validation), `ensemble`, `feature_concat`, `distill`.
# - Validation is carved from the training images (the official code validates on the test split).
# - Mini-protocol numbers come from embedded CPU-scale data and are never comparable to published numbers.

# %% tags=["parameters"]
paper: str = "zoo_tuning"  # paper (transferlab.papers) whose table this run belongs to
table: str = "adhoc"  # table name inside the paper ("adhoc" for interactive runs)
protocol: str = "mini"  # mini (embedded, CPU, minutes) | paper (real data and weights, GPU)
method: str = "zoo_tuning"  # zoo_tuning | zoo_tuning_lite | ensemble | feature_concat | distill | finetune
backbone: str = "mini_resnet"  # backbone: mini_resnet | resnet18 | resnet34 | resnet50 | cifar_resnet32
pretrained: str = "hub:mini"  # a model hub "hub:<name>" (multi-model methods) or one model "mini:<name>"
seed: int = 0  # seeds data sampling, initialisation and augmentation
precision: str = "auto"  # auto (bf16 autocast on GPU, fp32 on CPU) | bf16 | fp32
device: str = "auto"  # auto | cpu | cuda | cuda:N (run-time only)
method_params: dict = {}  # the method's own Config fields (none for finetune and scratch)
dataset: str = "mini_fmnist"  # registered dataset name (transferlab.data.DATASETS)
data_root: str = "data"  # where real datasets live (run-time only)
sample_rate: float = 0.15  # fraction of each class's training images kept, in (0, 1]
shots: int = 0  # k images per class instead of a rate (0: use sample_rate)
val_fraction: float = 0.1  # share of the sampled train set carved out per class for validation
batch_size: int = 32  # training batch size
eval_batch_size: int = 1024  # batch size for validation and test
preset: str = "auto"  # transform preset (transferlab.data.TRANSFORMS); auto: the dataset's default
ten_crop: bool = False  # 10-crop test-time evaluation (the papers' protocol at 224 px)
num_workers: int = 0  # DataLoader workers for file-based datasets (run-time only)
optimizer: str = "sgd"  # sgd | adam
lr: float = 0.01  # base learning rate (backbone)
momentum: float = 0.9  # SGD momentum (Adam: beta1)
weight_decay: float = 5e-4  # L2 weight decay, applied by the optimizer
nesterov: bool = True  # Nesterov momentum for SGD
head_lr_mult: float = 10.0  # lr multiplier of newly initialised parameters (the target head)
schedule: str = "cosine"  # constant | multistep | cosine
milestones: list = []  # multistep: iterations at which lr is multiplied by gamma
gamma: float = 0.1  # multistep decay factor
warmup_steps: int = 0  # linear warm-up iterations before the schedule
iterations: int = 300  # total optimisation steps
eval_every: int = 50  # evaluate on validation every N steps (and at the last step)
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
