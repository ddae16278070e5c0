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
# # Co-Tuning for Transfer Learning (You et al., NeurIPS 2020)
#
# Keep the pre-trained source head, learn the relationship p(y_s|y_t), and train the source head on the soft labels
# R[y] alongside the new target head: L = CE(target head) + λ · CE(source head, R[y]) with λ = 2.3.
#
# One cell of a table of the paper spec `lib/transferlab/papers/co_tuning.py`. Run top to bottom for a mini run (CPU, embedded data), edit the
# parameters to explore, or let the batch runner inject table cells: `transferlab run co_tuning --table sampling`.
#
# Status and known deviations:
#
# - Co-Tuning (`lib/transferlab/methods/co_tuning.py`, both relationship approaches) and the baselines L2-SP, DELTA,
#   BSS and LwF (`methods/l2sp.py`, `delta.py`, `bss.py`, `lwf.py`) are implemented and golden-checked against the
#   official code and TLlib. The NLP variant (CoNLL-2003 NER) is not implemented.
# - `method_params` takes the method's own settings, e.g. `{"relationship": "direct", "trade_off": 2.3}` for
#   co_tuning or `{"t_squared": False, "train_source_head": False}` for TLlib's exact LwF.
# - Mini-protocol numbers come from embedded CPU-scale data and are never comparable to published numbers.

# %% tags=["parameters"]
paper: str = "co_tuning"  # paper (transferlab.papers) whose table this run belongs to
table: str = "adhoc"  # table name inside the paper ("adhoc" for interactive runs)
protocol: str = "mini"  # mini (embedded, CPU, minutes) | paper (real data and weights, GPU)
method: str = "co_tuning"  # co_tuning | finetune | l2sp | delta | bss | lwf | scratch (transferlab.methods)
backbone: str = "mini_resnet"  # backbone: mini_resnet | resnet18 | resnet34 | resnet50 | cifar_resnet32
pretrained: str = "mini:fmnist_full"  # "none", IMAGENET1K_V1, moco_v2_800ep (MoCo) or "mini:<hub model>"
seed: int = 0  # seeds data sampling, initialisation and augmentation
precision: str = "auto"  # auto (bf16 autocast on GPU, fp32 on CPU) | bf16 | fp32
device: str = "auto"  # auto | cpu | cuda | cuda:N (run-time only)
method_params: dict = {}  # the method's own Config fields (co_tuning: relationship, trade_off, ...)
dataset: str = "mini_fmnist"  # registered dataset name (transferlab.data.DATASETS)
data_root: str = "data"  # where real datasets live (run-time only)
sample_rate: float = 0.15  # fraction of each class's training images kept, in (0, 1]
shots: int = 0  # k images per class instead of a rate (0: use sample_rate)
val_fraction: float = 0.2  # share of the sampled train set carved out per class for validation
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
