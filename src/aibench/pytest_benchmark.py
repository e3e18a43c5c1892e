"""Runs a user's pytest-benchmark file (or directory) through pytest in a subprocess and
turns each benchmark into a CaseResult.

Two reports come back from pytest: pytest-benchmark's --benchmark-json (the stats and
every round's time, per iteration, of each benchmark that finished timing) and
--junitxml (each test's outcome, failure message and skip reason). A benchmark's figures
count only when its test passed: a test whose own assertions failed after timing still
has stats in the JSON, but a wrong result is never a number.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UsageError
from .leftovers import owned_temp_dir, remove_stale_dirs
from .results import FAILED, PASSED, SKIPPED, CaseResult, Metric, Samples, Validation, now_iso
from .safety import terminate_with_parent
from .stats import summarize

_NO_TESTS = 5  # pytest.ExitCode.NO_TESTS_COLLECTED
# What --benchmark-only marks every test without the benchmark fixture: not a case.
_NON_BENCHMARK = "Skipping non-benchmark"
# extra_info numbers reported as higher-is-better metrics, by how their key ends.
_RATE_UNITS = {"_per_s": "per s", "_gbps": "GB/s", "_tflops": "TFLOP/s"}
# Rounds kept in the document per benchmark: pytest-benchmark takes thousands of rounds of
# a fast call within its --benchmark-max-time (3751 for one), each a line of the document.
MAX_STORED_ROUNDS = 200
# After a timeout pytest gets SIGINT and this long to write its reports before a kill.
_GRACE_S = 30.0
# A plugin for the pytest run. A benchmark stopped by the SIGINT before its first round
# ends has no data, and pytest-benchmark (5.x) then fails writing its JSON with min() of
# nothing, which also stops the junit report: both lost. This drops such a benchmark
# first, naming it in unfinished.txt beside itself; it runs before pytest-benchmark's own
# session-finish wrapper (tryfirst). And when aibench dies (pytest then gets SIGTERM, its
# parent-death signal), it removes its directory, which nobody will read, before ending.
_PLUGIN = "aibench_pytest_unfinished"
_TMP_PREFIX = "aibench-pytest-"
_PLUGIN_SOURCE = """
import os
import pathlib
import shutil
import signal
import time

import pytest

_HERE = pathlib.Path(__file__).parent


def _aibench_gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in "ZX"  # exited, not yet reaped
    except (OSError, IndexError):
        return True


def _end(signum, frame):
    # The parent-death signal may come while aibench's other threads are still being
    # killed: give it a moment to be gone. A SIGTERM from anyone else keeps the directory.
    try:
        owner = int((_HERE / "owner").read_text().split()[0])
        for _ in range(40):
            if _aibench_gone(owner):
                shutil.rmtree(_HERE, ignore_errors=True)
                break
            time.sleep(0.05)
    except (OSError, IndexError, ValueError):
        pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


signal.signal(signal.SIGTERM, _end)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session):
    bs = getattr(session.config, "_benchmarksession", None)
    if bs is not None:
        unfinished = [b.fullname for b in bs.benchmarks if not b.stats.data]
        bs.benchmarks[:] = [b for b in bs.benchmarks if b.stats.data]
        pathlib.Path(__file__).with_name("unfinished.txt").write_text("".join(n + "\\n" for n in unfinished))
    yield
"""


def _prepare_child() -> None:
    """In the child, before exec: SIGINT at its default and unblocked (an ignored or
    blocked SIGINT is inherited across exec, a library of the caller may block it, and
    then the timeout's SIGINT would never stop pytest, and its reports would be lost);
    and SIGTERM when aibench dies, even by SIGKILL (pytest runs in a session of its own,
    which no terminal's signal reaches)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    terminate_with_parent()


def pytest_benchmark_unavailable() -> str | None:
    """None when pytest and pytest-benchmark can run here, else why not."""
    for module, dist in (("pytest", "pytest"), ("pytest_benchmark", "pytest-benchmark")):
        if importlib.util.find_spec(module) is None:
            return f"{dist} is not installed (pip install {dist})"
    return None


def suite_name_for(path) -> str:
    """pytest:<file stem or directory name>: no directories, so the same on every machine."""
    p = Path(path).resolve()
    return f"pytest:{p.stem if p.is_file() else p.name}"


def run_benchmarks(path: str | Path, *, suite: str, budget_s: float, seed: int = 0, timeout_s: float = 3600,
                   impl: str = "pytest-benchmark", target: str = "cpu") -> list[CaseResult]:
    path = Path(path).resolve()
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    if not (path.is_dir() or (path.is_file() and path.suffix == ".py")):
        raise UsageError(f"{path} is neither a .py file nor a directory of them")
    reason = pytest_benchmark_unavailable()
    if reason:
        raise UsageError(f"cannot run pytest benchmarks: {reason}")
    root = path if path.is_dir() else path.parent
    started_at = now_iso()
    # The reports' directory: removed when done; after a SIGKILL of aibench (pytest then
    # gets SIGTERM) by the next run, through its owner file.
    remove_stale_dirs(tempfile.gettempdir(), _TMP_PREFIX)
    tmp = owned_temp_dir(_TMP_PREFIX)
    try:
        report, junit, log = Path(tmp, "benchmarks.json"), Path(tmp, "junit.xml"), Path(tmp, "pytest.log")
        Path(tmp, f"{_PLUGIN}.py").write_text(_PLUGIN_SOURCE)
        # `-p benchmark` (the entry point's name) loads the plugin even under
        # PYTEST_DISABLE_PLUGIN_AUTOLOAD and is a no-op when it autoloaded; `-p
        # pytest_benchmark.plugin` would register it twice and fail. junit_family xunit1:
        # its testcases carry the file, which makes the node id whole again.
        cmd = [sys.executable, "-m", "pytest", "-p", "benchmark", "-p", _PLUGIN, "-p", "no:cacheprovider", "-q",
               "--benchmark-only", f"--benchmark-json={report}", f"--benchmark-max-time={budget_s}",
               "--benchmark-min-rounds=5", f"--junitxml={junit}", "-o", "junit_family=xunit1", f"--rootdir={root}",
               str(path)]
        pythonpath = os.pathsep.join(p for p in (tmp, os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "AIBENCH_SEED": str(seed), "PYTHONHASHSEED": str(seed), "PYTHONPATH": pythonpath}
        with open(log, "w+b") as out:
            proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_prepare_child)
            timed_out = False
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                # SIGINT, not a kill: pytest stops the running test and still writes both
                # reports, so the benchmarks that finished are kept.
                timed_out = True
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(_GRACE_S)
                except subprocess.TimeoutExpired:
                    pass
            finally:
                if proc.poll() is None:  # also on the caller's own KeyboardInterrupt
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            out.seek(0)
            output = out.read().decode(errors="replace")
        outcomes = _junit_outcomes(junit)
        unfinished_file = Path(tmp, "unfinished.txt")  # written by _PLUGIN_SOURCE
        unfinished = unfinished_file.read_text().splitlines() if unfinished_file.exists() else []
        try:
            data = json.loads(report.read_text())
        except (OSError, ValueError):
            data = {}  # not written: no benchmark finished timing (or pytest was killed)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    benches = {b["fullname"]: b for b in data.get("benchmarks", [])}
    benches.update({name: None for name in unfinished if name not in benches})
    # pytest's other exit codes (2 interrupted or a collection error, 3 internal, 4 usage)
    # are an error only when no benchmark got as far as an outcome: none is lost.
    if not timed_out and not (outcomes or benches):
        if proc.returncode in (0, _NO_TESTS):
            raise UsageError(f"no pytest-benchmark benchmarks in {path}")
        if proc.returncode != 1:
            # A collection error's own line (`E   SyntaxError: ...`) or a usage error's
            # (`pytest: error: unrecognized arguments`) says more than pytest's last line.
            usage = next((line.strip() for line in reversed(output.splitlines()) if " error: " in line), "")
            detail = _last_line(output, "E ") or usage or _last_line(output) or f"exit code {proc.returncode}"
            raise UsageError(f"pytest could not run {path}: {detail}")
    timed_out_reason = f"timed out after {timeout_s:g} s before this test finished"
    nodeids = list(dict.fromkeys([*outcomes, *benches]))  # pytest's order; unfinished last
    names = [n.split("::")[-1] for n in nodeids]
    name_count = Counter(names)
    cases = []
    for nodeid, name in zip(nodeids, names):
        status, message = outcomes.get(nodeid, (FAILED, timed_out_reason if timed_out else "no outcome reported"))
        bench = benches.get(nodeid)
        case = CaseResult(
            suite=suite, case_id=name if name_count[name] == 1 else nodeid, params={"test": nodeid},
            target=target, impl=impl, status=status, started_at=started_at,
            impl_detail={"pytest_benchmark": data.get("version"), "file": nodeid.split("::")[0],
                         "cpu": data.get("machine_info", {}).get("cpu", {}).get("brand_raw")},
        )
        if bench:
            case.params.update({k: _scalar(v) for k, v in (bench.get("params") or {}).items() if k != "test"})
            case.params.update({k: v for k, v in (bench.get("extra_info") or {}).items()
                                if k not in case.params and _is_scalar(v) and not _rate_unit(k, v)})
        if status == PASSED and not (bench and bench["stats"].get("data")):
            status = case.status = FAILED
            message = "the test passed without calling the benchmark fixture: nothing was timed"
        if status == SKIPPED:
            case.validation = Validation(status=SKIPPED, reason=message)
        elif status == FAILED:
            case.validation, case.error = Validation(status=FAILED, reason=message), message
        else:
            case.validation = Validation(status=PASSED, reason="the test's own assertions passed")
            _add_measurement(case, bench)
        cases.append(case)
    return cases


def stored_rounds(samples: list[float], most: int = MAX_STORED_ROUNDS) -> list[float]:
    """At most `most` of the rounds, evenly spaced over the run, first and last included.
    Evenly spaced rather than the last N: the sample still spans the whole run, so a drift
    or a slow start stays visible to what reads the stored samples (compare's window
    spread, asv's per-sample figures); the statistics come from every round anyway."""
    if len(samples) <= most:
        return list(samples)
    return [samples[i] for i in np.linspace(0, len(samples) - 1, most).round().astype(int)]


def _add_measurement(case: CaseResult, bench: dict) -> None:
    stats, options = bench["stats"], bench.get("options") or {}
    samples = [float(s) for s in stats["data"]]  # seconds per iteration, one per round
    iterations = int(stats.get("iterations") or 1)
    # options["warmup"] is False or the warm-up's iterations; the fixture turns that into
    # min(rounds, max(1, warmup // iterations)) rounds of `iterations` calls.
    warmup = int(options.get("warmup") or 0)
    warmup_reps = min(len(samples), max(1, warmup // iterations)) * iterations if warmup else 0
    # "external": pytest-benchmark chose the rounds and iterations by its own rule. The
    # summary (median, interval) is of every round; the document keeps a bounded sample.
    stored = stored_rounds(samples)
    case.stats = Samples(samples_s=stored, number=iterations, warmup_reps=warmup_reps, stopped_by="external",
                         summary=summarize(samples), extra={"rounds_taken": len(samples), "rounds_stored": len(stored)})
    median = case.stats.summary.median
    case.metrics["ops_per_s"] = Metric(1.0 / median, "ops/s", True)
    case.metrics["time_us"] = Metric(median * 1e6, "us", False)
    for key, value in (bench.get("extra_info") or {}).items():
        unit = _rate_unit(key, value)
        if unit and key not in case.metrics:
            case.metrics[key] = Metric(float(value), unit, True)
    case.impl_detail["timer"] = options.get("timer")
    if stats.get("total") is not None:
        case.duration_s = float(stats["total"]) * iterations  # `total` sums per-iteration times


def _junit_outcomes(junit: Path) -> dict[str, tuple[str, str | None]]:
    """{node id: (status, one-line message)} of every benchmark test pytest reported."""
    try:
        tree = ET.parse(junit)
    except (OSError, ET.ParseError):
        return {}
    outcomes = {}
    for tc in tree.iter("testcase"):
        # xunit1 junitxml splits node id `sub/test_x.py::TestK::test_m[4]` into file
        # "sub/test_x.py", classname "sub.test_x.TestK" and name "test_m[4]".
        file, classname, name = tc.get("file", ""), tc.get("classname", ""), tc.get("name", "")
        if not (name and classname):  # the test a SIGINT stopped; a file that failed collection
            continue
        module = file.removesuffix(".py").replace("/", ".")
        classes = classname[len(module) + 1:].split(".") if classname.startswith(module + ".") else []
        status, message = PASSED, None
        for child in tc:
            text = _first_line(child.get("message")) or _last_line(child.text or "", "E ")
            if child.tag in ("failure", "error"):
                status, message = FAILED, text or f"the test {child.tag}ed"
                break
            if child.tag == "skipped":
                status, message = SKIPPED, text or "skipped"
        if status == SKIPPED and message.startswith(_NON_BENCHMARK):
            continue
        outcomes["::".join([file, *classes, name])] = (status, message)
    return outcomes


def _first_line(text: str | None) -> str:
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


def _last_line(output: str, prefix: str = "") -> str:
    """The last line of pytest's output that says something (not a ==== rule or timing)."""
    for line in reversed(output.splitlines()):
        line = line.strip().strip("=!").strip()
        if line.startswith(prefix) and line and not re.fullmatch(r"(\d+ \w+,? )+in [\d.]+s.*", line):
            return line[len(prefix):].strip() if prefix else line
    return ""


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _scalar(v: Any):
    return v if _is_scalar(v) else str(v)


def _rate_unit(key: str, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return next((unit for end, unit in _RATE_UNITS.items() if key.endswith(end)), None)
