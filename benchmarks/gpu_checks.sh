#!/usr/bin/env bash
# Every GPU figure of benchmarks/README.md in one prepared run, for a machine lent for minutes.
#
#   bash benchmarks/gpu_checks.sh OUT_DIR        # e.g. "$OUT" on the device machine
#
# Stages run in order, each writing OUT_DIR/<stage>.json and OUT_DIR/<stage>.txt; a stage whose
# JSON already exists is skipped, so running the script again after a time-out resumes where it
# stopped. Each stage has its own time limit, so one slow stage cannot eat the others' time.
# Needs a CUDA torch and the project importable: installed, or run from a checkout that carries the
# wheels docs/gpu_kit/prepare.sh puts in .gpu/ (the device tool's `carry`), which docs/gpu_kit/env.sh
# installs where the machine lacks them.
set -uo pipefail
out="${1:?usage: bash benchmarks/gpu_checks.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$(dirname "$0")/.."
# shellcheck source=../docs/gpu_kit/env.sh
source docs/gpu_kit/env.sh || exit $?
cd benchmarks
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: nothing to measure')" || exit 1

stage() {  # stage NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    if [ -s "$out/$name.json" ]; then echo "== $name: done before, skipped"; return; fi
    echo "== $name (at most ${limit} s)"
    timeout "$limit" "$@" --json "$out/$name.json" > "$out/$name.txt" 2>&1
    local status=$?
    tail -n 25 "$out/$name.txt"
    [ $status -eq 0 ] || echo "== $name: exit $status (124: out of time)"
}

stage degrade_fused 150 python3 degrade_throughput.py --device cuda --quick --fused --no-albumentations
stage restore 150 python3 restore_throughput.py --device cuda --quick --models vit-small,vit-base
stage train 200 python3 train_throughput.py --device cuda --quick --models vit-small,vit-base
stage train_compiled 200 python3 train_throughput.py --device cuda --quick --models vit-base --compile
