"""Recording aibench runs in asv's results tree, through asv's own classes.

Each node is an asv machine (machine.json with extra keys: GPU model and count, driver,
MPI library), each run is stored as an asv result of the aibench commit that measured
it, and benchmarks.json is written from the same AsvSpec that suites/benchmarks.py is built
from, so `asv publish` builds pages straight from `aibench run` output and
`asv run` (driving suites/ itself) lands on the same benchmarks.

A run document is input from whoever wrote it: its machine name must be a plain path
component (safety.check_machine_name), its commit a hash, and every string it gives
asv is HTML-escaped, since asv's pages show machine info as HTML.
"""

from __future__ import annotations

import ast
import datetime
import html
import platform
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from asv.benchmarks import Benchmarks
from asv.config import Config
from asv.machine import Machine
from asv.results import Results
from asv.runner import BenchmarkResult

from .documents import has_suite_params
from .errors import UsageError
from .results import PASSED, CaseResult, RunDocument
from .safe_write import ASV_RESULTS_JSON, check_target, prepare_directory, write_file
from .safety import check_machine_name
from .suites import all_suites
from .suites.base import AsvSpec, AsvTrack

# One fixed python and env_name on every machine, or asv's pages split them apart.
ASV_PYTHON = "3"
ASV_ENV_NAME = "aibench"
# A git commit (SHA-1 or SHA-256): it names the results file and is passed to `git show`.
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def asv_module(suite: str) -> str:
    """The asv module name of a suite: `pytest:bench_loader` -> `pytest_bench_loader`."""
    return re.sub(r"\W", "_", suite)


def benchmark_name(suite: str, class_name: str, method: str) -> str:
    """An asv benchmark's name, `<module>.<Class>.<track>`: what results/ records, the
    same since each suite had its own module under suites/ (asv_benchmarks.py gives the
    generated classes these names)."""
    return f"{asv_module(suite)}.{class_name}.{method}"


def asv_config(results_dir: Path, repo: Path | None = None) -> Config:
    return Config.from_json({
        "version": 1, "project": "aibench", "repo": str(repo or "."), "branches": ["main"],
        "benchmark_dir": "suites", "results_dir": str(results_dir), "html_dir": "html",
        "environment_type": "existing", "pythons": [ASV_PYTHON],
    })


def benchmark_dicts(spec: AsvSpec, suite: str) -> list[dict[str, Any]]:
    """The benchmarks as asv's discovery would list them from suites/benchmarks.py."""
    return [{
        "name": benchmark_name(suite, spec.class_name, t.method),
        "type": "track",
        "unit": t.unit,
        "version": spec.version,
        "param_names": list(spec.param_names),
        "params": [[repr(v) for v in values] for values in spec.param_values],
        "code": f"aibench {suite} suite, metric {t.metric} x {t.scale}",
    } for t in spec.tracks]


def _saved_benchmarks(conf: Config) -> dict[str, dict]:
    """benchmarks.json as saved (every suite exported so far), by benchmark name."""
    try:
        return {b["name"]: b for b in Benchmarks.load(conf)._all_benchmarks.values()}
    except Exception:  # noqa: BLE001 - none yet, or unreadable: rewritten from the suites
        return {}


def case_table_spec(suite: str, cases: list[CaseResult], known: dict[str, dict]) -> AsvSpec:
    """The asv class of a suite aibench has no AsvSpec for (a pytest-benchmark file, a
    plugin not installed here): (case, impl, target) x one track per metric, over the
    case ids of this run and of what was exported before (asv keeps one parameter list
    per benchmark, so the list only grows)."""
    passed = [c for c in cases if c.status == PASSED]
    metrics = {name: m.unit for c in passed for name, m in c.metrics.items()}
    tracks = tuple(AsvTrack(f"track_{re.sub(r'[^0-9A-Za-z_]', '_', name)}", name, unit)
                   for name, unit in metrics.items())
    values = [[c.case_id for c in passed], [c.impl for c in passed], [c.target.split(":")[0] for c in passed]]
    for t in tracks:
        before = known.get(benchmark_name(suite, "Benchmarks", t.method))
        if before is not None:  # asv stores values as their repr
            for i, stored in enumerate(before["params"]):
                values[i] = [ast.literal_eval(v) for v in stored] + values[i]
    return AsvSpec(class_name="Benchmarks", param_names=("case", "impl", "target"),
                   param_values=tuple(tuple(dict.fromkeys(v)) for v in values), tracks=tracks, version="1",
                   key=lambda params, target, impl: None,
                   case_key=lambda c: (c.case_id, c.impl, c.target.split(":")[0]))


def _text(value: Any) -> Any:
    """A value from a run document as asv machine info: a string, HTML-escaped (asv's
    graph page inserts machine info as HTML); None stays None."""
    return None if value is None else html.escape(value if isinstance(value, str) else str(value), quote=True)


def check_document_machine(doc: RunDocument, where: str | Path | None = None) -> str:
    """doc.machine, if it is a valid machine name (a path component of the results tree);
    else UsageError, naming `where` (the document's path) when given."""
    try:
        return check_machine_name(doc.machine)
    except UsageError as e:
        raise UsageError(f"{where}: {e}" if where is not None else str(e)) from None


def document_commit(doc: RunDocument) -> str:
    """The aibench commit the run was measured with; ValueError unless it is a git hash
    (it names the results file and goes to `git show`: no path, no option)."""
    commit = doc.aibench.get("commit")
    if not commit:
        raise ValueError("the aibench commit is unknown (not built from a git checkout), so asv cannot place the run")
    if not isinstance(commit, str) or not _COMMIT.fullmatch(commit):
        shown = repr(commit) if len(repr(commit)) <= 60 else repr(commit)[:57] + "..."
        raise ValueError(f"the aibench commit {shown} is not a git commit hash (40 or 64 hex digits)")
    return commit


def check_document(doc: RunDocument, where: str | Path) -> None:
    """What export_run refuses, checked up front: UsageError naming `where`."""
    check_document_machine(doc, where)
    try:
        document_commit(doc)
    except ValueError as e:
        raise UsageError(f"{where}: {e}") from None


def machine_info(doc: RunDocument) -> dict[str, str]:
    """asv machine keys. Every machine gets every key ('none' when absent), since a
    missing key becomes a null dimension on asv's pages. Every value is HTML-escaped
    (a no-op for ordinary names)."""
    system = doc.system
    gpus = system.get("gpus") or {}
    devices = gpus.get("devices") or []
    mpi = system.get("mpi") or {}
    mem = (system.get("memory") or {}).get("total_bytes") or 0
    info = {
        "machine": doc.machine,
        "os": f"{(system.get('os') or {}).get('system', platform.system())} {(system.get('os') or {}).get('release', '')}".strip(),
        "arch": (system.get("cpu") or {}).get("arch", platform.machine()),
        "cpu": (system.get("cpu") or {}).get("model", "unknown"),
        "num_cpu": str((system.get("cpu") or {}).get("cores") or ""),
        "ram": str(mem),
        "gpu": devices[0]["name"] if devices else "none",
        "gpu_count": str(gpus.get("count", 0)),
        "gpu_driver": str(gpus.get("nvidia_driver") or gpus.get("driver_version") or "none"),
        "mpi": mpi.get("library", "none") if isinstance(mpi, dict) else "none",
    }
    return {key: _text(value) for key, value in info.items()}


def _commit_date_ms(repo: Path, commit: str) -> int:
    try:
        out = subprocess.run(["git", "show", "-s", "--format=%ct", commit], cwd=repo, capture_output=True,
                             text=True, timeout=10, check=True)
        return int(out.stdout.strip()) * 1000
    except (OSError, subprocess.SubprocessError, ValueError):
        return int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)


def export_run(doc: RunDocument, results_dir: Path, repo: Path | None = None, flag: str = "--asv-results") -> Path:
    """Add `doc`'s passed cases to results_dir/<machine>/<commit>-aibench.json (merging
    with what is there for that machine and commit). Returns the results file.
    UsageError for a machine name that is not a plain path component, ValueError for a
    commit that is not a git hash; nothing is written then. asv saves into a private
    directory first; each file then goes into the tree by safe_write's rules (never
    through a link, never over another user's file or one that is not asv's)."""
    check_document_machine(doc)  # callers check too (publish names the document); this is the last line
    commit = document_commit(doc)
    repo = repo or Path(".")
    conf = asv_config(results_dir, repo)
    suites = all_suites()

    specs = [(name, spec) for name, s in suites.items() for spec in s.asv_specs()]
    known = _saved_benchmarks(conf)
    tracked = {name for name, _ in specs}
    for name in dict.fromkeys(c.suite for c in doc.cases if c.suite not in tracked and c.status == PASSED):
        specs.append((name, case_table_spec(name, [c for c in doc.cases if c.suite == name], known)))
    for name, spec in specs:
        known.update({d["name"]: d for d in benchmark_dicts(spec, name)})
    info = machine_info(doc)
    machine = Machine()
    machine.__dict__.update(info)
    params = {**info, "python": ASV_PYTHON}
    results = Results(params, {}, commit, _commit_date_ms(repo, commit), ASV_PYTHON, ASV_ENV_NAME, {})
    path = results_dir / doc.machine / Path(results._filename).name
    prepare_directory(path.parent, flag)
    if check_target(path, ASV_RESULTS_JSON, flag=flag) is not None:  # asv's own file: merged with
        results = Results.load(str(path))
    started = datetime.datetime.fromisoformat(doc.started_at)
    for suite_name, spec in specs:
        cases = [c for c in doc.cases if c.suite == suite_name and c.status == PASSED]
        if not cases:
            continue
        for track, bench in zip(spec.tracks, benchmark_dicts(spec, suite_name)):
            _add_track(results, bench, spec, track, cases, started)

    stage = Path(tempfile.mkdtemp(prefix="aibench-asv-"))
    try:
        Benchmarks(asv_config(stage, repo), list(known.values())).save()
        machine.save(str(stage))
        results.save(str(stage))
        staged = {results_dir / p.relative_to(stage): p for p in sorted(stage.rglob("*")) if p.is_file()}
        for target in staged:  # every target checked before the first is written
            prepare_directory(target.parent, flag)
            check_target(target, ASV_RESULTS_JSON, flag=flag)
        for target, source in staged.items():
            write_file(target, source.read_bytes(), ASV_RESULTS_JSON, flag=flag)
    finally:
        shutil.rmtree(stage)
    return path


def _add_track(results: Results, bench: dict, spec: AsvSpec, track, cases: list[CaseResult], started) -> None:
    import itertools

    combos = list(itertools.product(*spec.param_values))
    index = {combo: i for i, combo in enumerate(combos)}
    values: list[Any] = [None] * len(combos)
    samples: list[Any] = [None] * len(combos)
    numbers: list[Any] = [None] * len(combos)
    for case in cases:
        if not has_suite_params(case):  # a foreign document's case: asv cannot place it
            continue
        key = spec.case_key(case) if spec.case_key else spec.key(case.params, case.target, case.impl)
        if key not in index or track.metric not in case.metrics:
            continue
        i = index[key]
        value = case.metrics[track.metric].value * track.scale
        values[i] = value
        times = case.stats.samples_s if case.stats is not None else []
        median_t = case.stats.summary.median if case.stats is not None else None
        if times and median_t:
            # Each sample's metric, assuming the metric scales with 1/time (throughput)
            # or with time (time per operation), as every aibench metric does.
            higher = case.metrics[track.metric].higher_is_better
            samples[i] = [value * (median_t / t if higher else t / median_t) for t in times]
            numbers[i] = 1
    selected = {i for i, v in enumerate(values) if v is not None}
    if not selected:
        return
    result = BenchmarkResult(result=values, samples=samples, number=numbers, errcode=0, stderr="", profile=None)
    results.add_result(bench, result, started_at=started, record_samples=True, selected_idx=selected)
