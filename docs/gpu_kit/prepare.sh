#!/usr/bin/env bash
# Prepare, on a developer's machine, what the lent GPU machine lacks for docs/gpu_kit/train_bundled.sh:
# the wheels of the project's dependencies that its image does not hold (for its Python 3.12), and
# the real scans of the training collections, copied into the checkout's ignored .gpu/ folder so
# that they travel with the working tree (name `.gpu` in the device tool's `carry`). The held-out
# collections stay here, where docs/gpu_kit/finish.sh measures the result on them.
#
#   bash docs/gpu_kit/prepare.sh [REAL_PAGES_DIR]     # default ../shared/data/real-pages/images
#
# The real scans are for research training only (their SOURCES.md): .gpu/ is ignored by git
# (.git/info/exclude), so they are never committed. The working tree that travels is capped at
# 64 MiB: the repository is about 27 MB, the training scans 22 MB and the wheels 11 MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
real="${1:-../shared/data/real-pages/images}"
[ -d "$real" ] || { echo "prepare.sh: $real: no such folder of real pages" >&2; exit 2; }
mkdir -p .git/info
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude

rm -rf .gpu/wheels .gpu/real-pages
mkdir -p .gpu/wheels
mkdir -p .gpu/real-pages
for collection in "$real"/*/; do
    case "$(basename "$collection")" in
        tamil-palmleaf|cremma-mss18-french) ;;  # held out: never on the training machine
        *) cp -r "$collection" .gpu/real-pages/ ;;
    esac
done

# What the image lacks (KINDS.md lists what it holds): kornia and its Rust core, pydantic, the
# fonts, and typer at the version cli/common.py is written against. --no-deps: each need is named.
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .gpu/wheels \
    "kornia==0.9.0" "kornia_rs==0.2.0" "pydantic==2.14.4" "pydantic_core==2.50.5" "annotated-types==0.8.0" \
    "typing-inspection==0.4.5" "typer==0.29.2" "fontpkg==0.2.2" "fontpkg-kalam==2.1" \
    "fontpkg-noto-sans-devanagari==2.7"
du -sh .gpu/wheels .gpu/real-pages
echo "prepared .gpu/: carry [\".gpu\"] and run: bash docs/gpu_kit/train_bundled.sh \"\$OUT\""
