# Sourced by the scripts that run on a lent GPU machine (docs/gpu_kit/train_bundled.sh,
# benchmarks/gpu_checks.sh): the project importable from this checkout, and the wheels that
# docs/gpu_kit/prepare.sh carried in .gpu/wheels installed into $MANURESTORE_KIT_STATE/site only
# where the machine's image lacks a dependency (once per machine; the folder outlasts a call while
# the machine stays warm). Run from the repository root.
kit_state="${MANURESTORE_KIT_STATE:-/tmp/manurestore-kit}"
mkdir -p "$kit_state"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
[ -f "$kit_state/site.ok" ] && export PYTHONPATH="$kit_state/site:$PYTHONPATH"
if ! python3 -c "import manurestore.cli.app" 2>/dev/null; then
    if [ ! -d .gpu/wheels ]; then
        echo "the project does not import here and no .gpu/wheels were carried (docs/gpu_kit/prepare.sh)" >&2
        return 2 2>/dev/null || exit 2
    fi
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$kit_state/site" .gpu/wheels/*.whl && touch "$kit_state/site.ok" || { return 1 2>/dev/null || exit 1; }
    export PYTHONPATH="$kit_state/site:$PYTHONPATH"
fi
