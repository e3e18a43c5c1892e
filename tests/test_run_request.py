"""A run is a value: `aibench run`'s options make a RunRequest, RunRequest.argv() spells
the same request back (the MPI self-launch's child command line), and session.run runs
a request in this process and returns a RunReport."""

from __future__ import annotations

import argparse
import json
import math

import pytest

from aibench.cli import build_parser
from aibench.errors import UsageError
from aibench.report import RunReport
from aibench.request import RunRequest
from aibench.session import run

# A value for each `aibench run` option that takes one (by dest), other than its default.
VALUES = {"suite": "gemm", "pytest_benchmark": "tests/bench", "target": "cuda:1", "impl": "blas",
          "param": "m=64,128", "output": "out/run.json", "machine": "node-7", "redfish": "https://bmc.example",
          "asv_results": "elsewhere", "mpi_thread_level": "multiple"}


def _run_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]


def _option_words(action: argparse.Action) -> list[str]:
    """`aibench run` words that set this option to something other than its default."""
    flag = action.option_strings[-1]
    if action.nargs == 0:  # store_true, store_const (--quick, --full)
        return [flag]
    if action.dest in VALUES:
        return [flag, VALUES[action.dest]]
    if action.type is float:
        return [flag, "2.5"]
    if action.type is int:
        return [flag, "3"]
    return [flag, f"/some/{action.dest}"]  # a suite's own option (--path, --url, ...)


def _request(words: list[str]) -> RunRequest:
    argv = ["run", *words]
    return RunRequest.from_args(build_parser().parse_args(argv), ["aibench", *argv])


def _every_option() -> list[list[str]]:
    options = []
    for action in _run_parser()._actions:
        if not action.option_strings or action.dest == "help":
            continue
        words = _option_words(action)
        if action.dest == "per_gpu":  # it goes with --fleet and --target cuda
            words += ["--fleet", "--target", "cuda"]
        options.append(words)
    return options


@pytest.mark.parametrize("words", _every_option(), ids=lambda w: w[0])
def test_every_run_option_survives_the_round_trip(words):
    """from_args -> argv -> from_args gives the same request, for every option of `aibench
    run` (a new option RunRequest does not carry fails here: the request equals the default)."""
    request = _request(words)
    assert request != _request([]), f"{words} is not carried by RunRequest"
    again = _request(request.argv()[1:])
    assert again == request
    assert again.argv() == request.argv()


def test_all_options_together_survive_the_round_trip():
    words = [w for option in _every_option() for w in option if option[0] not in ("--quick", "--full")]
    request = _request([*words, "--full"])
    assert _request(request.argv()[1:]) == request


def test_a_request_built_by_code_spells_its_params_as_the_cli_reads_them():
    request = RunRequest(suites=["interconnect"], params={"inplace": [False, True], "size": [4096]})
    assert request.params == {"inplace": ["false", "true"], "size": ["4096"]}
    assert request.argv() == ["run", "--suite", "interconnect", "--param", "inplace=false,true", "--param", "size=4096"]
    assert request.command_line() == ["aibench", *request.argv()]


@pytest.mark.parametrize("fields, message", [
    ({"ranks": 0}, "--ranks must be between 1 and 256"),
    ({"ranks": 300}, "--ranks must be between 1 and 256 (got 300)"),
    ({"time_budget": math.nan}, "--time-budget must be a number of seconds above 0"),
    ({"max_call_s": -1.0}, "--max-call-s must be a number of seconds above 0"),
    ({"collective_timeout": math.inf}, "--collective-timeout must be a number of seconds above 0"),
    ({"power_window": 0.0}, "--power-window must be a number of seconds above 0"),
    ({"target": "tpu"}, "unknown target 'tpu'"),
    ({"per_gpu": True}, "--per-gpu goes with --fleet and --target cuda"),
    ({"tier": "medium"}, "unknown tier 'medium'"),
    ({"mpi_thread_level": "many"}, "--mpi-thread-level 'many'"),
    ({"suite_options": {"no_such_option": "x"}}, "unknown suite option(s) no_such_option"),
])
def test_a_bad_request_is_refused_as_it_is_built(fields, message):
    with pytest.raises(UsageError) as refused:
        RunRequest(**fields)
    assert message in str(refused.value)


def test_a_bad_param_on_the_command_line_is_refused_as_the_request_is_built():
    with pytest.raises(UsageError, match="malformed --param 'm'"):
        _request(["--param", "m"])


def test_run_in_process_returns_a_report(tmp_path, capsys):
    output = tmp_path / "run.json"
    request = RunRequest(suites=["gemm"], tier="quick", impls=["blas"], output=output, record_asv=False,
                         params={"m": [64], "n": [64], "k": [64], "dtype": ["fp64"]}, time_budget=0.2)
    report = run(request)
    assert isinstance(report, RunReport)
    assert (report.status, report.ended_by, report.exit_code, report.output) == ("complete", None, 0, output)
    assert [(c.suite, c.case_id, c.impl, c.status) for c in report.cases] == [("gemm", "64x64x64-fp64", "blas", "passed")]
    saved = json.loads(output.read_text())
    assert saved["status"] == "complete" and len(saved["cases"]) == 1
    assert saved["command"] == ["aibench", *request.argv()]  # a request built by code records its argv
    assert capsys.readouterr().out == ""  # run() prints no summary: report.print_run does


def test_run_in_process_refuses_what_cannot_run_before_anything_runs(tmp_path):
    with pytest.raises(UsageError, match="unknown parameter 'mm'"):
        run(RunRequest(suites=["gemm"], params={"mm": ["64"]}, output=tmp_path / "run.json"))
    assert not (tmp_path / "run.json").exists()


def test_run_and_preflight_take_one_collective_timeout():
    """One timeout for every collective wait: the same option, default and help in both."""
    from aibench.watchdog import DEFAULT_TIMEOUT_S

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = [next(a for a in sub.choices[c]._actions if a.dest == "collective_timeout") for c in ("run", "preflight")]
    assert [(a.default, a.help) for a in options[1:]] == [(options[0].default, options[0].help)]
    assert parser.parse_args(["preflight"]).collective_timeout is None  # watchdog.DEFAULT_TIMEOUT_S
    assert f"default {DEFAULT_TIMEOUT_S:.0f}" in options[0].help


def test_a_signal_stops_an_in_process_run_which_reports_it_and_gives_the_handlers_back(tmp_path, monkeypatch):
    """SIGTERM during a case: the run's StopSignals turns it into a stop between
    statements, the finished cases are saved, the report says which signal (exit 128+15),
    and the caller's own handler is back afterwards."""
    import os
    import signal

    from aibench.suites.gemm import GemmSuite

    original = GemmSuite.run_case
    calls = {"n": 0}

    def terminate_second(self, params, impl, ctx):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, params, impl, ctx)

    monkeypatch.setattr(GemmSuite, "run_case", terminate_second)
    def mine(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        report = run(RunRequest(suites=["gemm"], impls=["aibench"], output=tmp_path / "run.json", record_asv=False,
                                params={"m": [8, 16, 24], "n": [8], "k": [8], "dtype": ["fp32"]}, time_budget=0.05))
        handler_after = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (report.status, report.ended_by, report.exit_code) == ("interrupted", "signal SIGTERM", 128 + signal.SIGTERM)
    assert [c.case_id for c in report.cases] == ["8x8x8-fp32"]
    assert json.loads(report.output.read_text())["ended_by"] == "signal SIGTERM"
    assert handler_after is mine
