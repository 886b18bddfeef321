#!/usr/bin/env bash
# One prepared command for a fresh GPU machine without network (sized for < 8 minutes):
#   1. environment: the machine's own python3 and its CUDA build of torch (never a CPU wheel); stops with exit
#      code 3 when torch.cuda.is_available() is false
#   2. installs wheelhouse/*.whl (made by scripts/gpu_wheelhouse.sh on a machine with a network) into a private
#      folder with pip --no-index --no-deps, so the image's torch and its other packages stay as they are
#   3. the tests marked gpu (tests/gpu): every model and encoder on CUDA against CPU, a test-time knockout, train.py
#      with trainer=gpu
#   4. benchmarks/models.py --device cuda on the Baby graph (every model: epoch, evaluation, peak GPU memory and
#      their ratio to the same kernels timed alone on the GPU)
#   5. benchmarks/lightning_overhead.py --device cuda (train.py's Lightning path against the bare loop, FREEDOM)
#   6. a FREEDOM run on TikTok through train.py (trainer=gpu): epoch and evaluation seconds from its summary.json
#   7. gpu_table.md: the README's GPU table, filled from 4 and 6
# Everything goes to OUT_DIR (argument, else $OUT, else outputs/gpu_check), eight files at most: gpu_check.log,
# status.txt, environment.json, gpu_tests.xml, models_cuda.jsonl, overhead_cuda.json, tiktok_freedom_summary.json,
# gpu_table.md. Each stage has its own time limit and
# a failed stage does not stop the later ones (see status.txt). Data: $MMREC_SHARED_DATASETS, else gpu_data/
# (scripts/gpu_wheelhouse.sh copies it there), else ../shared/datasets.
set -uo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT_DIR="${1:-${OUT:-$REPO/outputs/gpu_check}}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
exec > >(tee "$OUT_DIR/gpu_check.log") 2>&1
cd "$REPO"
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled MMREC_CACHE="${MMREC_CACHE:-/tmp/mmrec-gpu-cache}"
if [[ -z "${MMREC_SHARED_DATASETS:-}" ]]; then
  if [[ -d "$REPO/gpu_data" ]]; then export MMREC_SHARED_DATASETS="$REPO/gpu_data"
  else export MMREC_SHARED_DATASETS="$REPO/../shared/datasets"; fi
fi
DATA="$MMREC_SHARED_DATASETS"
: > "$OUT_DIR/status.txt"
stage() {  # stage NAME SECONDS COMMAND...: run with a time limit, record its exit status
  local name="$1" limit="$2"; shift 2
  local t0=$SECONDS
  echo "=== $name (limit ${limit}s) ==="
  timeout --kill-after=10 "$limit" "$@"
  local rc=$?
  echo "$name rc=$rc seconds=$((SECONDS - t0))" | tee -a "$OUT_DIR/status.txt"
  return $rc
}

# ---- 1. environment --------------------------------------------------------------------------------------------
"$PY" - "$OUT_DIR/environment.json" <<'EOF'
import json, platform, sys
import torch
info = {"python": platform.python_version(), "torch": torch.__version__, "cuda_build": torch.version.cuda,
        "cuda_available": torch.cuda.is_available()}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info.update(gpu=p.name, gpu_memory_gb=round(p.total_memory / 2**30, 1), sm_count=p.multi_processor_count,
                bf16=torch.cuda.is_bf16_supported())
json.dump(info, open(sys.argv[1], "w"), indent=1)
print(json.dumps(info))
sys.exit(0 if torch.cuda.is_available() else 3)
EOF
rc=$?
if [[ $rc -ne 0 ]]; then
  echo "gpu_check: with $PY, torch does not import or torch.cuda.is_available() is false (a CUDA build of torch is needed); stopping" | tee -a "$OUT_DIR/status.txt"
  exit 3
fi

# ---- 2. wheels -------------------------------------------------------------------------------------------------
if compgen -G "$REPO/wheelhouse/*.whl" > /dev/null; then
  SITE=/tmp/mmrec-site
  stage install 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "$REPO"/wheelhouse/*.whl
  export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
else
  echo "gpu_check: no wheelhouse/ (scripts/gpu_wheelhouse.sh); using the packages already installed"
  export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" -c "import hydra, omegaconf, jsonschema, pytorch_lightning, transformers, mmrec, torch; \
print('imports ok; torch', torch.__version__, 'lightning', pytorch_lightning.__version__)" \
  || { echo "gpu_check: imports failed" | tee -a "$OUT_DIR/status.txt"; exit 4; }
"$PY" -m pip list 2>/dev/null | grep -i -E "^(torch|pytorch-lightning|transformers|numpy|scipy|hydra-core) " || true

# ---- 3. the gpu tests ------------------------------------------------------------------------------------------
stage gpu_tests 180 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/gpu -n 4 -rs --durations=15 \
  --junitxml="$OUT_DIR/gpu_tests.xml"

# ---- 4. per-model benchmark on the Baby graph ------------------------------------------------------------------
rm -f "$OUT_DIR/models_cuda.jsonl"
stage benchmark_models 160 "$PY" benchmarks/models.py --device cuda --threads 4 \
  --data "$DATA/amazon-graphs/baby.inter" --json "$OUT_DIR/models_cuda.jsonl"

# ---- 5. Lightning's overhead on the GPU ------------------------------------------------------------------------
stage lightning_overhead 50 "$PY" benchmarks/lightning_overhead.py --device cuda --threads 4 --epochs 3 \
  --data "$DATA/amazon-graphs/baby.inter" --out /tmp/mmrec-overhead --json "$OUT_DIR/overhead_cuda.json"

# ---- 6. FREEDOM on TikTok through train.py ---------------------------------------------------------------------
stage tiktok_freedom 50 "$PY" train.py model=freedom dataset=tiktok trainer=gpu trainer.max_epochs=5 \
  trainer.enable_progress_bar=false logger=none hydra.run.dir=/tmp/mmrec-tiktok-freedom
cp /tmp/mmrec-tiktok-freedom/summary.json "$OUT_DIR/tiktok_freedom_summary.json" 2>/dev/null

# ---- 7. the table ----------------------------------------------------------------------------------------------
"$PY" scripts/gpu_table.py "$OUT_DIR" | tee "$OUT_DIR/gpu_table.md"
echo "gpu_check: done; results in $OUT_DIR"
cat "$OUT_DIR/status.txt"
