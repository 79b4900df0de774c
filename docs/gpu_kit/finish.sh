#!/usr/bin/env bash
# Back on a developer's machine: join the weights docs/gpu_kit/train_bundled.sh sent back and measure
# them on the held-out collections (never carried to the GPU machine) beside the bundled model.
#
#   bash docs/gpu_kit/finish.sh FILES_DIR [REAL_PAGES_DIR]    # FILES_DIR: the device tool's files_at
#
# Writes FILES_DIR-measured/: candidate.safetensors and, for each model and preset, the JSON of
# `manurestore evaluate` (aged and heavy at seed 0, aged with --safety), then prints the means.
set -euo pipefail
files="${1:?usage: bash docs/gpu_kit/finish.sh FILES_DIR [REAL_PAGES_DIR]}"
real="${2:-$(dirname "$0")/../../../shared/data/real-pages/images}"
measured="${files%/}-measured"
mkdir -p "$measured"
cat "$files"/best.safetensors.part-* > "$measured/candidate.safetensors"
held=(--include tamil-palmleaf --include cremma-mss18-french)
for name in bundled candidate; do
    model=()
    [ "$name" = candidate ] && model=(-m "$measured/candidate.safetensors")
    manurestore evaluate "${model[@]}" "$real" "${held[@]}" --preset aged --seed 0 --safety \
        --json "$measured/$name-aged.json" --overwrite > /dev/null
    manurestore evaluate "${model[@]}" "$real" "${held[@]}" --preset heavy --seed 0 \
        --json "$measured/$name-heavy.json" --overwrite > /dev/null
done
python3 - "$measured" <<'PY'
import json, sys
root = sys.argv[1]
for name in ("bundled", "candidate"):
    aged, heavy = (json.load(open(f"{root}/{name}-{p}.json")) for p in ("aged", "heavy"))
    a, h, s = aged["mean"], heavy["mean"], aged["safety"]
    print(f"{name:10s} aged {a['identity']['psnr']:.2f} -> {a['restored']['psnr']:.2f} dB ({a['gain']['psnr']:+.2f}), "
          f"SSIM {a['restored']['ssim']:.3f}, {aged['worst']['worse_psnr']} pages worse; heavy {h['gain']['psnr']:+.2f} dB; "
          f"clean in {s['mean']['psnr']:.2f} dB, ΔE {s['mean']['delta_e']:.2f}")
PY
