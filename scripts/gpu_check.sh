#!/usr/bin/env bash
# The device check: on a machine with an NVIDIA GPU, build aibench with CUDA, run every
# GPU test, the device double's tests against the real GPU (tests/gpu_double), run a
# short GPU benchmark, and print its table. Meant to finish in about 8
# minutes on an H100. Results go to $OUT (default ./gpu-check-out).
#
#   scripts/gpu_check.sh            # uses the python3 on PATH (needs CuPy, pybind11,
#                                   # scikit-build-core, nvidia-cublas or a toolkit with cuBLAS)
# Wheels in .whl/ (e.g. asv for machines without network) are installed to /tmp/site first.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
status=0

echo "== GPU =="
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true

if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi

echo "== build with CUDA =="
start=$(date +%s)
# Build for this GPU only (fast); on Hopper (9.0) that is sm_90a, which enables wgmma.
cc="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '. ')"
arch="${cc:-90}"; [ "$arch" = "90" ] && arch="90a"
export AIBENCH_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)"
export CMAKE_ARGS="${CMAKE_ARGS:--DAIBENCH_CUDA_ARCHITECTURES=$arch}"
echo "architectures: $CMAKE_ARGS"
if ! "$PY" -m pip install -q --no-build-isolation --no-deps . >"$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"; echo "BUILD FAILED"; exit 1
fi
echo "built in $(( $(date +%s) - start )) s"
cd /tmp  # import the installed package, not the source tree
"$PY" -c "from aibench import _cuda; print('devices', _cuda.device_count(), _cuda.build_info())" || exit 1
cd - >/dev/null

if [ "$arch" = "90a" ]; then
  echo "== wgmma smoke test (own process) =="
  if ! ( cd /tmp && timeout 120 "$PY" "$REPO/scripts/wgmma_smoke.py" ) 2>&1 | tee "$OUT/wgmma-smoke.log"; then
    echo "WGMMA SMOKE FAILED: the rest of the check uses the mma.sync kernel"; status=1
    export AIBENCH_MMA_GEMM_VARIANT=mma_sync
  fi
fi

echo "== GPU tests =="
"$PY" -m pytest -q -m gpu tests -p no:cacheprovider --continue-on-collection-errors 2>&1 | tee "$OUT/pytest-gpu.log" | tail -30
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "== the device double against the real GPU (tests/test_gpu_double*.py: params real and double) =="
# The same test functions run on the double and (param `real`, marked gpu) on this GPU:
# a difference between the two is a defect of the double or of the GPU code.
"$PY" -m pytest -q tests/test_gpu_double.py tests/test_gpu_double_units.py -p no:cacheprovider -rs 2>&1 \
  | tee "$OUT/pytest-double.log" | tail -15
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
grep -E "passed|failed" "$OUT/pytest-double.log" | tail -1

echo "== short GPU benchmark: aibench run --target cuda --quick =="
cd /tmp
COLUMNS=200 aibench run --target cuda --quick --suite gemm --suite attention --machine "${MACHINE:-gpu-check}" \
  --output "$OUT/gpu-quick.json" --asv-results "$OUT/asv" 2>&1 | tee "$OUT/run.log" | grep -v '━'
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
exit $status
