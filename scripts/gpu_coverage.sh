#!/usr/bin/env bash
# Line coverage of aibench's GPU code in the CPU-only run of the device double's tests
# (tests/test_gpu_double*.py, tests/gpu_double/): the GPU modules whole, and the GPU
# branches of preflight, fingerprint and accept (named in scripts/gpu_branch_coverage.py),
# printed per module, and a failure (exit 1) below the gate. MPI ranks those tests start
# are measured too (launch.py calls coverage.process_startup). Lines only a real device
# reaches carry `# pragma: no cover (reason)`.
#
#   scripts/gpu_coverage.sh            # gate 90%; GPU_COVERAGE_MIN=95 to raise it
set -uo pipefail
cd "$(dirname "$0")/.."
MIN="${GPU_COVERAGE_MIN:-90}"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if ! "$PY" -c "import coverage" 2>/dev/null; then
  echo "gpu_coverage: coverage.py is not installed (pip install -e '.[test]')"; exit 2
fi
cat >"$WORK/coveragerc" <<RC
[run]
parallel = True
data_file = $WORK/.coverage
include = $("$PY" scripts/gpu_branch_coverage.py --include)
RC
export COVERAGE_PROCESS_START="$WORK/coveragerc"  # the ranks launch.py starts
start=$(date +%s)
"$PY" -m coverage run --rcfile="$WORK/coveragerc" -m pytest -q -p no:cacheprovider tests/test_gpu_double*.py
tests=$?
echo "gpu_coverage: the double's tests took $(( $(date +%s) - start )) s"
"$PY" -m coverage combine --rcfile="$WORK/coveragerc" -q
echo "== line coverage of the GPU code (CPU only, device double) =="
"$PY" scripts/gpu_branch_coverage.py --data-file="$WORK/.coverage" --rcfile="$WORK/coveragerc" --min="$MIN"
gate=$?
[ $tests -ne 0 ] && echo "gpu_coverage: FAILED: the double's tests failed"
[ $tests -eq 0 ] && [ $gate -eq 0 ]
