#!/usr/bin/env bash
# GPU work on a lent CUDA machine, run from the repository root (see BENCHMARKS.md, "How the GPU check runs"):
#   bash bench/gpu_check.sh [check]                  the CUDA tests (runner, placement, spectral layers), then the
#                                                    quickstart, timed
#   bash bench/gpu_check.sh throughput [ARGS...]     bench/gpu_throughput.py (the FNO step; trials packed k at a time)
#   bash bench/gpu_check.sh reproduce MODEL [...]    bench/reproduce.py --models MODEL ... (published Darcy errors)
# Outputs go to $OUT. That machine's image has torch and pytorch_lightning but not Optuna, MLflow or pydantic: wheels
# for those travel in .whl/ (git-ignored; BENCHMARKS.md gives the pip download command).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
REPO=$PWD
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$REPO/platform:$REPO/modules
export SWEEPLAB_DATA_DIR=/tmp/sweeplab-data PYTHONUNBUFFERED=1
nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
python3 -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'lightning', pl.__version__, 'cuda', torch.cuda.is_available())"
stage=${1:-check}
shift || true
case "$stage" in
check)
    python3 -m pytest tests/test_gpu.py tests/test_fno.py tests/test_spectral_speedup.py tests/test_placement.py \
        tests/test_runner.py -q -x -p no:cacheprovider 2>&1 | tee "$OUT/pytest.log"
    rm -rf /tmp/quickstart && mkdir -p /tmp/quickstart && cp studies/quickstart.yaml /tmp/quickstart/
    cd /tmp/quickstart && { time python3 -m sweeplab run quickstart.yaml; } 2>&1 | tee "$OUT/quickstart.log"
    ;;
throughput)
    python3 bench/gpu_throughput.py "$@" 2>&1 | tee "$OUT/gpu_throughput.log"
    ;;
reproduce)
    python3 bench/reproduce.py --models "$@" --out "$OUT/reproduce" 2>&1 | tee "$OUT/reproduce.log"
    ;;
*)
    echo "unknown stage $stage (check, throughput, reproduce)" >&2
    exit 2
    ;;
esac
