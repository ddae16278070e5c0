#!/usr/bin/env bash
# The input-path measurement of issue #19 on one GPU machine, in about 5 minutes: images/s end to end from JPEG
# files (decode or decoded-image cache -> augmentation -> training step) beside the bare step, for ResNet-50 at batch
# 48 and 128, the 5-model hub methods (Zoo-Tuning, Hub-Pathway k = 2 of 5, ensemble) and the L2T-ww 32 px step;
# fit() against a bare loop on ResNet-50; the bare ResNet-50 step torch.compile-d (mode reduce-overhead).
#
#   scripts/gpu_bench.sh [TARBALL] [OUTDIR]
#
# TARBALL: an ImageFolder tree as .tar.gz (default: the developers' CIFAR-10 JPEGs, ../shared/data/cifar10-jpeg.tar.gz,
# or $TRANSFERLAB_SHARED_DATA/cifar10-jpeg.tar.gz); it is copied to a temporary folder and unpacked there, never
# into the checkout. OUTDIR (default $OUT, else reports/gpu): bench_data.json, bench_fit.json, bench_compile.json
# and gpu_bench.log. Needs python3 with torch, torchvision, Pillow and numpy; nothing else of the project's pins.
# Every JSON records the machine, the Pillow / torch versions (provenance) and, per case, whether the device path's
# first batch equalled the PIL path's bit for bit on this GPU ("identical_to_pil").
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
tarball="${1:-${TRANSFERLAB_SHARED_DATA:-$here/../shared/data}/cifar10-jpeg.tar.gz}"
out="${2:-${OUT:-$here/reports/gpu}}"
mkdir -p "$out"
log="$out/gpu_bench.log"
py="${PYTHON:-python3}"
export PYTHONPATH="$here/lib${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
work="$(mktemp -d)"
export TRANSFERLAB_CACHE="$work/cache" TRANSFERLAB_RESULTS="$work/results"
trap 'rm -rf "$work"' EXIT

{
  date -u +"start %Y-%m-%dT%H:%M:%SZ"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "$py" -c "import torch, torchvision, PIL, numpy; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'Pillow', PIL.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"
  "$py" -c "import transferlab.perf.data" || { echo "transferlab does not import with this python: stop"; exit 2; }
  [ -f "$tarball" ] || { echo "no tarball at $tarball: pass one (an ImageFolder tree, train/<class>/*.jpg)"; exit 2; }
  cp "$tarball" "$work/tree.tar.gz" && mkdir -p "$work/tree" && tar -xzf "$work/tree.tar.gz" -C "$work/tree"
  tree="$(dirname "$(find "$work/tree" -maxdepth 3 -type d -name train | head -1)")"
  echo "tree: $tree ($(find "$tree/train" -type f | wc -l) training files)"
  bench() { timeout "$1" "$py" -m transferlab.cli bench "${@:2}"; echo "exit $? after: bench ${*:2}"; }
  # ResNet-50 at 224 px (the Co-Tuning / Zoo-Tuning preset), every input path, 8 workers as the paper tables use.
  bench 150 --suite data --tree "$tree" --images 8192 --workers 8 --steps 30 --repeats 3 \
    --cases resnet50_b48,resnet50_b128 --pipelines pil,cache,device --out "$out/bench_data.json"
  # The 5-model hub methods (random ResNet-50 weights: a step costs the same with any) and L2T-ww's 32 px step.
  bench 150 --suite data --tree "$tree" --images 8192 --workers 8 --steps 10 --repeats 2 \
    --cases hub5_r50_b48,l2t_32_b128 --pipelines pil,device --out "$out/bench_data_hub.json"
  # fit() against a bare loop (ResNet-50, 224, b128, bf16): the target ratio <= 1.05 on a GPU.
  bench 90 --suite fit --gpu-only --steps 40 --repeats 3 --out "$out/bench_fit.json"
  # The optional compiled step (RunConfig.compile), off by default until this says it pays.
  bench 200 --suite data --tree "$tree" --images 8192 --workers 8 --steps 30 --repeats 2 \
    --cases resnet50_b48 --pipelines device --compile reduce-overhead --out "$out/bench_compile.json"
  date -u +"end %Y-%m-%dT%H:%M:%SZ"
} 2>&1 | tee "$log"
