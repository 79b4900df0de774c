#!/usr/bin/env bash
# On a lent GPU machine: fine-tune the bundled model on the real scans that docs/gpu_kit/prepare.sh
# put in .gpu/ (the held-out collections stay behind), mixed 2 : 1 with synthetic pages where the
# machine's Pillow can shape Devanagari, in stages that resume.
#
#   bash docs/gpu_kit/train_bundled.sh OUT [SECONDS]     # OUT: "$OUT" of the device tool
#
# SECONDS (default 420) is the training stage's time limit. State lives in $MANURESTORE_KIT_STATE
# (default /tmp/manurestore-kit), which outlasts a call while the machine stays warm: a second call
# skips the stages that are done and resumes training from its last checkpoint. What comes back in
# OUT: the best weights split into parts under 16 MiB (the tool's limit per file), the run's
# config.json and metrics.jsonl, and the log. Join and measure them on the held-out collections
# with docs/gpu_kit/finish.sh. MANURESTORE_KIT_DEVICE=cpu with a small SECONDS and
# MANURESTORE_KIT_SMALL=1 runs the same stages on a CPU, to check the script before device time is spent;
# MANURESTORE_KIT_DATA names another folder of training collections than .gpu/real-pages.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${1:?usage: bash docs/gpu_kit/train_bundled.sh OUT [SECONDS]}"
seconds="${2:-420}"
state="${MANURESTORE_KIT_STATE:-/tmp/manurestore-kit}"
device="${MANURESTORE_KIT_DEVICE:-cuda}"
mkdir -p "$state" "$out"
log="$out/train_bundled.log"
exec > >(tee -a "$log") 2>&1
data="${MANURESTORE_KIT_DATA:-.gpu/real-pages}"
[ -d "$data" ] || { echo "no $data: run docs/gpu_kit/prepare.sh here and carry .gpu"; exit 2; }
for held in tamil-palmleaf cremma-mss18-french; do  # the collections the model is measured on
    [ -e "$data/$held" ] && { echo "$data/$held: held out for evaluation, never trained on; remove it"; exit 2; }
done

# 0. The project from this checkout; the carried wheels only where the image lacks a dependency.
# shellcheck source=env.sh
source docs/gpu_kit/env.sh || exit $?
raqm=$(python3 - "$device" <<'PY'
import sys, torch
from PIL import features
import manurestore.cli.app  # every import the commands need
if sys.argv[1] == "cuda" and not torch.cuda.is_available():
    sys.exit("no CUDA device: this script is for the lent GPU machine")
print("yes" if features.check("raqm") else "no")
PY
) || exit 1
echo "== torch $(python3 -c 'import torch; print(torch.__version__)') on $device; Pillow raqm: $raqm"

# 1. Synthetic pages beside the real ones (Devanagari needs raqm; without it, real pages alone).
sources=("$data")
mix=(--mix 1)
if [ "$raqm" = yes ]; then
    pages=300
    [ -n "${MANURESTORE_KIT_SMALL:-}" ] && pages=6
    if [ ! -f "$state/synth/manifest.json" ]; then
        echo "== synth: $pages pages"
        python3 -m manurestore synth "$state/synth" --pages "$pages" --seed 1000 -j "$(nproc)" || exit 1
    fi
    sources+=("$state/synth")
    mix=(--mix 2 --mix 1)
fi

# 2. Training: the bundled model fine-tuned (the model card's v3 command, with GPU-sized batches).
run="$state/run"
resume=()
[ -f "$run/state.pt" ] && resume=(--resume)
batch=64
[ -n "${MANURESTORE_KIT_SMALL:-}" ] && batch=2
echo "== train: at most $seconds s${resume:+ (resumed)}"
python3 -m manurestore train "${sources[@]}" "${mix[@]}" \
    --model vit-small --init-weights bundled --crop 256 --batch-size "$batch" --device "$device" \
    --precision "$([ "$device" = cuda ] && echo bf16 || echo fp32)" --lr 5e-5 --warmup 0.02 \
    --preset train-real --perceptual-weight 0 --ema 0.999 --weights-dtype fp16 \
    --crops-per-image 64 --epochs 1000 --max-steps 40000 --time-limit "$seconds" --val-every 4 \
    --checkpoint-every 60 --seed 23 \
    --run-dir "$run" "${resume[@]}"
status=$?
[ $status -eq 0 ] || echo "== train: exit $status"

# 3. What comes back: the best weights in parts, the run's record.
if [ -f "$run/best.safetensors" ]; then
    split -b 15M -d "$run/best.safetensors" "$out/best.safetensors.part-"
    cp "$run/config.json" "$run/metrics.jsonl" "$out/" 2>/dev/null
    echo "== weights: $(du -h "$run/best.safetensors" | cut -f1) in $(ls "$out"/best.safetensors.part-* | wc -l) parts"
fi
exit $status
