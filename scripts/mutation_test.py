#!/usr/bin/env python3
"""Deterministic mutation testing of the code whose bugs mislead users.

Every mutant of a curated operator set is made, one at a time, in the functions that
scripts/mutation/targets.toml names (the modules that compute figures and verdicts), and
the tests the same file names are run against it. A mutant the tests do not fail
"survives": the step fails unless scripts/mutation/equivalent.toml lists that mutant as
equivalent (the same behaviour as the original), with the reason.

Operators (each one mutant per place, always the same list for the same source):
  arith     a + b <-> a - b, a * b <-> a / b, a ** b -> a * b
  compare   < <-> <=, > <-> >=, == <-> !=, is <-> is not, in <-> not in
  bool      a and b <-> a or b; `not x` -> x
  const     an int n -> n + 1 (1 -> 0, so a dropped factor 2 is 2 -> 3 and a dropped
            factor is covered by arith); a float x -> 2x (0.0 -> 1.0); True <-> False
  dropcond  `if cond:` -> `if False:` (the guarded branch dropped)

Mutant ids are stable across unrelated edits: module:function:operator:original text,
plus an occurrence number when the same text is mutated twice in one function.

How: the module's tests run once under a profiler that records which tests call which
target function; then each mutant runs in a forked child that compiles the mutated module
and swaps the mutated function's code object and defaults into the imported one (so
every reference, `from x import f` included, runs the mutant), then runs only the tests
that call that function, stopping at the first failure. Nothing is written to disk, so
mutants can run side by side (--workers), and a test that reaches the function only
through a subprocess does not count (the subprocess imports the unmutated file). A mutant
that no test calls survives without a run.

    scripts/mutation_test.py [--budget-s S] [--only MODULE ...] [--ci] [--list] [--killers]
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import importlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGETS = HERE / "mutation" / "targets.toml"
EQUIVALENT = HERE / "mutation" / "equivalent.toml"

_ARITH = {ast.Add: (ast.Sub, "-"), ast.Sub: (ast.Add, "+"), ast.Mult: (ast.Div, "/"), ast.Div: (ast.Mult, "*"),
          ast.Pow: (ast.Mult, "*")}
_COMPARE = {ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">", ast.Eq: "!=", ast.NotEq: "==",
            ast.Is: "is not", ast.IsNot: "is", ast.In: "not in", ast.NotIn: "in"}


@dataclass(frozen=True)
class Mutant:
    id: str
    line: int
    start: int  # character offsets into the source
    end: int
    replacement: str
    description: str


def _offsets(source: str) -> list[int]:
    """Character offset of the start of each line (1-based line numbers index it)."""
    starts, total = [0, 0], 0
    for line in source.splitlines(keepends=True):
        total += len(line)
        starts.append(total)
    return starts


def _functions(tree: ast.Module):
    """(qualified name, node) of every function, methods as Class.method."""
    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                yield name, child
                yield from walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
    yield from walk(tree, "")


def _docstring_nodes(tree) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def mutants_of(source: str, module: str, patterns: list[str]) -> list[Mutant]:
    """Every mutant of the functions of `source` whose qualified names match `patterns`.
    Nested functions belong to the outermost matching function."""
    tree = ast.parse(source)
    starts = _offsets(source)
    docstrings = _docstring_nodes(tree)
    seg = lambda n: ast.get_source_segment(source, n)  # noqa: E731
    pos = lambda n: (starts[n.lineno] + n.col_offset, starts[n.end_lineno] + n.end_col_offset)  # noqa: E731
    out: list[Mutant] = []
    seen_nodes: set[int] = set()
    for qualname, fn in _functions(tree):
        if not any(fnmatch.fnmatchcase(qualname, p) for p in patterns):
            continue
        counts: dict[str, int] = {}

        def add(node, op: str, replacement: str, original: str):
            key = f"{op}:{' '.join(original.split())[:80]}"
            counts[key] = counts.get(key, 0) + 1
            suffix = f"#{counts[key]}" if counts[key] > 1 else ""
            start, end = pos(node)
            out.append(Mutant(f"{module}:{qualname}:{key}{suffix}", node.lineno, start, end, replacement,
                              f"{op}: {' '.join(original.split())[:60]} -> {' '.join(replacement.split())[:60]}"))

        for node in ast.walk(fn):
            if id(node) in seen_nodes:
                continue
            seen_nodes.add(id(node))
            if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
                text = seg(node)
                add(node, "arith", f"({seg(node.left)} {_ARITH[type(node.op)][1]} {seg(node.right)})", text)
            elif isinstance(node, ast.Compare):
                for i, cmp_op in enumerate(node.ops):
                    if type(cmp_op) not in _COMPARE:
                        continue
                    parts = [seg(node.left)]
                    for j, (o, right) in enumerate(zip(node.ops, node.comparators)):
                        symbol = _COMPARE[type(o)] if j == i else _symbol(o)
                        parts += [symbol, seg(right)]
                    add(node, "compare", "(" + " ".join(parts) + ")", seg(node) + (f" [op {i}]" if len(node.ops) > 1 else ""))
            elif isinstance(node, ast.BoolOp):
                other = " or " if isinstance(node.op, ast.And) else " and "
                add(node, "bool", "(" + other.join(seg(v) for v in node.values) + ")", seg(node))
            elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
                add(node, "bool", f"({seg(node.operand)})", seg(node))
            elif isinstance(node, ast.Constant) and id(node) not in docstrings:
                value = node.value
                if isinstance(value, bool):
                    add(node, "const", repr(not value), seg(node))
                elif isinstance(value, int):
                    add(node, "const", repr(0 if value == 1 else value + 1), seg(node))
                elif isinstance(value, float):
                    add(node, "const", repr(1.0 if value == 0.0 else value * 2), seg(node))
            elif isinstance(node, (ast.If, ast.IfExp, ast.While)) and not isinstance(node.test, ast.Constant):
                add(node.test, "dropcond", "False", seg(node.test))
    return out


def _symbol(op) -> str:
    return {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is",
            ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}[type(op)]


def apply(source: str, mutant: Mutant) -> str:
    return source[: mutant.start] + mutant.replacement + source[mutant.end :]


def load_targets() -> list[dict]:
    return tomllib.loads(TARGETS.read_text())["module"]


def load_equivalent() -> dict[str, str]:
    if not EQUIVALENT.exists():
        return {}
    return {e["id"]: e["reason"] for e in tomllib.loads(EQUIVALENT.read_text()).get("mutant", [])}


class _Recorder:
    """pytest plugin: which target functions each test calls (in this process), and the
    first test that fails."""

    def __init__(self, code_owner: dict):
        self.code_owner = code_owner  # code object -> qualified name of the outer target function
        self.calls: dict[str, set[str]] = {}
        self.current: str | None = None
        self.first_failure: str | None = None
        self.seconds: dict[str, float] = {}  # test -> its time (setup, call, teardown)

    def _profile(self, frame, event, arg):
        if event == "call" and self.current is not None:
            owner = self.code_owner.get(frame.f_code)
            if owner is not None:
                self.calls.setdefault(owner, set()).add(self.current)

    def pytest_runtest_setup(self, item):
        self.current = item.nodeid

    def pytest_runtest_teardown(self, item):
        self.current = None

    def pytest_runtest_logreport(self, report):
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration
        if report.failed and self.first_failure is None:
            self.first_failure = report.nodeid


def _code_objects(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, type(code)):
            yield from _code_objects(const)


def _resolve(module, qualname: str):
    """The function object `qualname` names in `module` (unwrapping static/class methods,
    properties and functools wrappers), or None."""
    obj = module
    for part in qualname.split("."):
        holder = obj
        obj = holder.__dict__.get(part) if hasattr(holder, "__dict__") else None
        if obj is None:
            return None
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        elif isinstance(obj, property):
            obj = obj.fget
    while hasattr(obj, "__wrapped__"):
        obj = obj.__wrapped__
    return obj if hasattr(obj, "__code__") else None


def _silence():
    if os.environ.get("MUTATION_VERBOSE"):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)


def _pytest_args(tests) -> list[str]:
    # hypothesis's pytest plugin imports hypothesis at every pytest start (~0.8 s of CPU,
    # once per mutant: most of a mutant's cost); no target test uses it.
    return ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--no-header", "-o", "addopts=", *tests]


def test_map(module, qualnames: list[str], tests: list[str]) -> tuple[dict[str, list[str]], bool]:
    """({function: [test node ids that call it]}, whether the tests pass unmutated): the
    tests run once, in a child process, with a profiler that records the calls."""
    code_owner = {}
    for name in qualnames:
        fn = _resolve(module, name)
        if fn is not None:
            for code in _code_objects(fn.__code__):
                code_owner.setdefault(code, name)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child runs the tests and sends the map back
        os.close(read_fd)
        import json
        import threading

        import pytest

        _silence()
        recorder = _Recorder(code_owner)
        sys.setprofile(recorder._profile)
        threading.setprofile(recorder._profile)
        rc = pytest.main(_pytest_args(tests), plugins=[recorder])
        sys.setprofile(None)
        # each function's tests, fastest first: a mutant is usually killed by the first
        fastest = lambda t: recorder.seconds.get(t, 0.0)  # noqa: E731
        payload = json.dumps({"rc": int(rc), "calls": {k: sorted(v, key=fastest) for k, v in recorder.calls.items()}})
        with os.fdopen(write_fd, "w") as out:
            out.write(payload)
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as inp:
        text = inp.read()
    os.waitpid(pid, 0)
    import json

    data = json.loads(text) if text else {"rc": 1, "calls": {}}
    return data["calls"], data["rc"] == 0


def start_mutant(module, source: str, mutant: Mutant, qualname: str, tests: list[str]):
    """Fork a child that swaps the mutated function's code into `module` and runs `tests`;
    returns (pid, read end of the pipe on which it names the first failing test)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid != 0:
        os.close(write_fd)
        return pid, read_fd
    os.close(read_fd)
    os.setpgid(0, 0)  # a timeout kills whatever the tests started, too
    _silence()
    status = "error: not swapped"
    try:
        namespace = {"__name__": module.__name__, "__file__": module.__file__, "__package__": module.__package__}
        exec(compile(apply(source, mutant), module.__file__, "exec", dont_inherit=True), namespace)
        original, mutated = _resolve(module, qualname), _resolve(_Namespace(namespace), qualname)
        original.__code__ = mutated.__code__  # every reference to the function runs the mutant
        # A default argument is kept by the function, not its code: a mutated default too.
        original.__defaults__, original.__kwdefaults__ = mutated.__defaults__, mutated.__kwdefaults__
        import pytest

        recorder = _Recorder({})
        rc = pytest.main(_pytest_args(tests), plugins=[recorder])
        status = (recorder.first_failure or f"exit {int(rc)}") if rc != 0 else ""
    except BaseException as e:  # noqa: BLE001 - a mutant that cannot even load is killed
        status = f"{type(e).__name__} while loading the mutant"
    with os.fdopen(write_fd, "w") as out:
        out.write(status)
    os._exit(0)


class _Namespace:
    def __init__(self, d):
        self.__dict__.update(d)


def outer_function(mutant: Mutant, qualnames: list[str]) -> str:
    """The matched function a mutant lies in (its id names it)."""
    return next(q for q in sorted(qualnames, key=len, reverse=True) if mutant.id.split(":")[1] == q)


def run_module(target: dict, equivalent: dict[str, str], deadline: float, workers: int, timeout_s: float) -> dict:
    """Every mutant of one target module, `workers` at a time; its row of the report."""
    module = importlib.import_module(f"aibench.{target['module']}")
    source = Path(module.__file__).read_text()
    mutants = mutants_of(source, target["module"], target["functions"])
    qualnames = sorted({m.id.split(":")[1] for m in mutants})
    start = time.monotonic()
    calls, passed = test_map(module, qualnames, target["tests"])
    row = {"module": target["module"], "tests": target["tests"], "mutants": len(mutants), "killed": 0, "equivalent": 0, "survived": [],
           "not_run": 0, "killers": {}, "baseline_ok": passed}
    if not passed:
        return row
    queue = list(mutants)
    running: dict[int, tuple[Mutant, int, float]] = {}
    while queue or running:
        while queue and len(running) < workers:
            m = queue.pop(0)
            if time.monotonic() > deadline:
                row["not_run"] += 1
                continue
            tests = calls.get(outer_function(m, qualnames), [])
            if not tests:  # no test calls the function: nothing can kill the mutant
                _settle(row, m, "", equivalent)
                continue
            pid, fd = start_mutant(module, source, m, outer_function(m, qualnames), tests)
            running[pid] = (m, fd, time.monotonic())
        if not running:
            continue
        pid, timed_out = _wait_any(running, timeout_s)
        m, fd, _ = running.pop(pid)
        with os.fdopen(fd) as inp:
            status = inp.read()
        _settle(row, m, f"timeout after {timeout_s:.0f} s" if timed_out else status, equivalent)
    row["seconds"] = time.monotonic() - start
    return row


def _wait_any(running: dict, timeout_s: float) -> tuple[int, bool]:
    """(pid, whether it was killed for its time) of the next child to end; a child past
    its time is killed, and its mutant counts as killed (a mutant that hangs is caught)."""
    killed: set[int] = set()
    while True:
        pid, _ = os.waitpid(-1, os.WNOHANG)
        if pid in running:
            return pid, pid in killed
        now = time.monotonic()
        for child, (_, _, started) in running.items():
            if now - started > timeout_s and child not in killed:
                try:
                    os.killpg(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                killed.add(child)
        time.sleep(0.02)


def _settle(row: dict, m: Mutant, status: str, equivalent: dict[str, str]) -> None:
    if status.startswith("error: not swapped") or status.startswith("ValueError"):
        row["survived"].append((m, "the mutant could not be swapped in (its function's closure changed)"))
    elif status:
        row["killed"] += 1
        row["killers"][m.id] = status
    elif m.id in equivalent:
        row["equivalent"] += 1
    else:
        row["survived"].append((m, ""))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget-s", type=float, default=900.0, help="wall-time budget of the whole step")
    ap.add_argument("--only", nargs="*", default=None, help="modules to mutate (default: every target)")
    ap.add_argument("--ci", action="store_true", help="only the modules targets.toml marks ci = true")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--timeout-s", type=float, default=60.0, help="a mutant's tests past this are killed (the mutant counts as killed)")
    ap.add_argument("--killers", action="store_true", help="print the test that killed each mutant")
    args = ap.parse_args(argv)

    os.chdir(ROOT)  # the tests' conftest and relative paths
    sys.path.insert(0, str(ROOT / "tests"))
    targets = [t for t in load_targets() if (args.only is None or t["module"] in args.only)
               and (t.get("ci", False) or not args.ci)]
    equivalent = load_equivalent()
    if args.list:
        total = 0
        for t in targets:
            module = importlib.import_module(f"aibench.{t['module']}")
            for m in mutants_of(Path(module.__file__).read_text(), t["module"], t["functions"]):
                print(f"{m.id}  (line {m.line}) {m.description}")
                total += 1
        print(f"{total} mutants")
        return 0

    deadline = time.monotonic() + args.budget_s
    import pytest  # noqa: F401 - imported once here, so each forked child starts warm

    # The test modules too (pytest's default import mode finds them in sys.modules), so a
    # child spends its time running tests, not importing them.
    for t in targets:
        for test in t["tests"]:
            name = Path(test.split("::")[0]).stem
            if name not in sys.modules:
                importlib.import_module(name)

    rows = [run_module(t, equivalent, deadline, args.workers, args.timeout_s) for t in targets]
    print(f"{'module':<28} {'mutants':>7} {'killed':>6} {'equiv':>5} {'survived':>8} {'not run':>7} {'kill rate':>9} {'time':>6}")
    for r in rows:
        judged = r["mutants"] - r["equivalent"] - r["not_run"]
        rate = f"{r['killed'] / judged:.0%}" if judged else "-"
        print(f"{r['module']:<28} {r['mutants']:>7} {r['killed']:>6} {r['equivalent']:>5} {len(r['survived']):>8} "
              f"{r['not_run']:>7} {rate:>9} {r.get('seconds', 0):>5.0f}s")
    failed = False
    for r in rows:
        if not r["baseline_ok"]:
            print(f"FAILED: aibench/{r['module']}: its tests fail before any mutation ({' '.join(r['tests'])})")
            failed = True
        for m, why in r["survived"]:
            print(f"survived: {m.id} (line {m.line}) {m.description}" + (f" [{why}]" if why else ""))
        if args.killers:
            for mid, by in r["killers"].items():
                print(f"killed: {mid} by {by}")
    every_id = set()
    for t in targets:
        module = importlib.import_module(f"aibench.{t['module']}")
        every_id |= {m.id for m in mutants_of(Path(module.__file__).read_text(), t["module"], t["functions"])}
    for item in sorted(set(equivalent) - every_id):
        print(f"note: {EQUIVALENT.relative_to(ROOT)} lists {item}, which is no longer a mutant")
    not_run = sum(r["not_run"] for r in rows)
    survivors = sum(len(r["survived"]) for r in rows)
    if not_run:
        print(f"FAILED: {not_run} mutants not run within the {args.budget_s:.0f} s budget")
    if survivors:
        print(f"FAILED: {survivors} mutant(s) survived: add a test that kills each, or list it in "
              f"{EQUIVALENT.relative_to(ROOT)} with the reason it is equivalent")
    if failed or not_run or survivors:
        return 1
    print(f"mutation testing passed: {sum(r['mutants'] for r in rows)} mutants, every one killed or listed as equivalent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
