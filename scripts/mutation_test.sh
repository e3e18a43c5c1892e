#!/usr/bin/env bash
# Mutation testing, bounded: cosmic-ray (its own venv) mutates the modules that decide
# verdicts and figures, one mutant at a time, and runs their tests against each; a mutant
# the tests do not fail "survives" and is listed. The modules mutated are the files the
# test Python imports (the installed package in CI, src/ in an editable install); each is
# backed up first and restored on exit, whatever happens.
#
#   scripts/mutation_test.sh [BUDGET_S] [MODULE ...]    (default: 240 s; stats compare)
#
# The budget is shared among the modules; mutants left when it is spent are reported as
# not run. Exit 0 always: the report is the output (surviving mutants are a to-do list).
set -euo pipefail
cd "$(dirname "$0")/.."
budget="${1:-240}"
shift || true
modules=("$@")
[ "$#" -gt 0 ] || modules=(stats compare)
python="${PYTHON:-python3}"
work="$(mktemp -d)"
declare -A backups=()
restore() {
  for path in "${!backups[@]}"; do cp "${backups[$path]}" "$path"; done
}
trap restore EXIT

python3 -m venv "$work/cr" && "$work/cr/bin/pip" install -q cosmic-ray >/dev/null
tests="tests/test_stats.py tests/test_compare.py tests/test_schema_docs.py"
share=$(( budget / ${#modules[@]} ))
for module in "${modules[@]}"; do
  path="$("$python" -c "import aibench.$module as m; print(m.__file__)")"
  cp "$path" "$work/$module.py.orig"
  backups["$path"]="$work/$module.py.orig"
  cat >"$work/$module.toml" <<EOF
[cosmic-ray]
module-path = "$path"
timeout = 60.0
excluded-modules = []
test-command = "$python -m pytest -x -q -p no:cacheprovider $tests"

[cosmic-ray.distributor]
name = "local"
EOF
  "$work/cr/bin/cosmic-ray" init "$work/$module.toml" "$work/$module.sqlite"
  start=$SECONDS
  timeout "$share" "$work/cr/bin/cosmic-ray" exec "$work/$module.toml" "$work/$module.sqlite" || true
  cp "$work/$module.py.orig" "$path"  # a mutant cut off by the budget must not stay
  echo "== aibench/$module.py: $((SECONDS - start)) s =="
  "$work/cr/bin/cr-report" --show-pending "$work/$module.sqlite" | grep -E "^(total|complete|surviving)" || true
  # each surviving mutant: its operator and the line it changed
  "$work/cr/bin/cosmic-ray" dump "$work/$module.sqlite" | python3 -c '
import json, sys
for line in sys.stdin:
    item, result = json.loads(line)
    if result and result.get("test_outcome") == "survived":
        diff = [d for d in (result.get("diff") or "").splitlines() if d[:1] in "+-" and d[:3] not in ("+++", "---")]
        print("  survived:", item["mutations"][0]["operator_name"].split("/")[-1], "|", " => ".join(s[1:].strip() for s in diff))'

done
