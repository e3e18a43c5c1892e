"""Safe under hostile and careless use (docs/security.md): aibench never replaces what is
not its own, never stores, prints or resolves a URL's credentials, keeps names inside
their directories, ends cleanly on signals, and its gates fail closed."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aibench.cli import main
from aibench.results import CaseResult, Metric, RunDocument, Validation, write_atomic
from aibench.safety import redact_url, split_credentials
from result_helpers import interval_stats
from mpi_helpers import clean_env

TINY_GEMM = ["--suite", "gemm", "--param", "m=32", "--param", "n=32", "--param", "k=32", "--param", "dtype=fp64",
             "--impl", "blas", "--time-budget", "0.05", "--no-asv"]


def run_cli(*args, cwd=None, timeout=120, **env):
    return subprocess.run([sys.executable, "-m", "aibench.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=clean_env(**env), cwd=cwd)


def one_line_exit_2(p, needle):
    assert p.returncode == 2, p.stdout[-500:] + p.stderr[-1500:]
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in p.stderr, p.stderr


# ---- 1. --output never replaces what is not ours ------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_output_to_a_device_is_refused_and_the_device_stays(tmp_path):
    """A private null device (1, 3), so that a regression cannot replace the real /dev/null."""
    import stat

    device = tmp_path / "null"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    before = os.stat(device)
    one_line_exit_2(run_cli("run", *TINY_GEMM, "--output", str(device)), "is not a regular file")
    after = os.stat(device)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file owned by another user needs root")
def test_another_users_file_is_not_replaced_without_force(tmp_path):
    victim = tmp_path / "notes.txt"
    victim.write_text("private notes\n")
    os.chown(victim, 65534, 65534)
    victim.chmod(0o600)
    for force in ([], ["--force"]):  # another user's file: --force does not lift that rule
        one_line_exit_2(run_cli("run", *TINY_GEMM, "--output", str(victim), *force), "belongs to another user")
        st = victim.stat()
        assert victim.read_text() == "private notes\n" and (st.st_uid, st.st_mode & 0o777) == (65534, 0o600)
    # Nor another user's run document (it became root's, 0644, before: #27).
    theirs = tmp_path / "theirs.json"
    assert run_cli("run", *TINY_GEMM, "--output", str(theirs)).returncode == 0
    os.chown(theirs, 65534, 65534)
    before = theirs.read_bytes()
    one_line_exit_2(run_cli("run", *TINY_GEMM, "--output", str(theirs)), "belongs to another user")
    assert theirs.read_bytes() == before and theirs.stat().st_uid == 65534
    # An aibench run document of ours may be replaced (a rerun), keeping its mode and
    # group; --force replaces a regular file of ours.
    doc = tmp_path / "run.json"
    assert run_cli("run", *TINY_GEMM, "--output", str(doc)).returncode == 0
    doc.chmod(0o640)
    os.chown(doc, 0, 65534)
    assert run_cli("run", *TINY_GEMM, "--output", str(doc)).returncode == 0
    st = doc.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, 65534, 0o640)
    ours = tmp_path / "ours.txt"
    ours.write_text("mine\n")
    one_line_exit_2(run_cli("run", *TINY_GEMM, "--output", str(ours)), "is not an aibench run document")
    assert run_cli("run", *TINY_GEMM, "--output", str(ours), "--force").returncode == 0
    assert json.loads(ours.read_text())["schema"] == "aibench.run"


@pytest.mark.parametrize("where, needle", [
    ("DIR", "is a directory"),
    ("/proc/aibench-run.json", "cannot write the run document in /proc"),
    ("/sys/aibench/run.json", "cannot write the run document in /sys/aibench"),
])
def test_output_that_cannot_be_written_is_one_line(tmp_path, where, needle):
    target = str(tmp_path) if where == "DIR" else where
    one_line_exit_2(run_cli("run", *TINY_GEMM, "--output", target), needle)


def test_the_real_dev_null_is_refused_by_the_check():
    """Checked only (nothing written), so that a regression cannot replace /dev/null; the
    commands meet a private null device in tests/test_write_targets.py."""
    from aibench.errors import UsageError
    from aibench.safe_write import MADE_SPEC, check_target

    with pytest.raises(UsageError, match="is not a regular file"):
        check_target(Path("/dev/null"), MADE_SPEC, force=True, flag="-o")


def test_a_link_planted_after_the_check_is_replaced_not_written_through(tmp_path, monkeypatch):
    """write_file renames a temporary file over the target: a link put there between the
    check and the write loses its place; what it points to is untouched."""
    from aibench import safe_write

    victim, target = tmp_path / "victim", tmp_path / "run.json"
    victim.write_text("victim\n")
    checked = safe_write.check_target

    def check_then_plant(path, *args):
        st = checked(path, *args)
        Path(path).symlink_to(victim)
        return st

    monkeypatch.setattr(safe_write, "check_target", check_then_plant)
    safe_write.write_file(target, "new\n", safe_write.RUN_DOCUMENT)
    assert victim.read_text() == "victim\n" and not target.is_symlink() and target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "victim"]  # no temporary file left


# ---- 2. credentials in URLs -----------------------------------------------------------------


def test_redaction_and_splitting():
    assert redact_url("GET http://admin:pw@bmc:443/x failed; s3://k:s@b/p") == \
        "GET http://***@bmc:443/x failed; s3://***@b/p"
    assert split_credentials("https://admin:p%40ss@bmc.example:8443/redfish/v1") == \
        ("https://bmc.example:8443/redfish/v1", "admin", "p%40ss")
    assert split_credentials("http://host/x") == ("http://host/x", None, None)


@pytest.mark.parametrize("flags", [
    ["--url", "s3://bucket/p", "--endpoint-url", "http://user:s3cretpw@127.0.0.1:9"],
    ["--url", "s3://user:s3cretpw@bucket/p"],
])
def test_credentials_in_store_urls_are_refused_without_echoing_them(tmp_path, flags):
    p = run_cli("run", "--suite", "objectstore", "--quick", "--no-asv", *flags, cwd=tmp_path)
    one_line_exit_2(p, "credentials in --")
    assert "s3cretpw" not in p.stdout + p.stderr
    assert not list(tmp_path.rglob("*.json"))


class _RecordingRedfish(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).seen.append((self.path, self.headers.get("Host"), self.headers.get("Authorization")))
        docs = {"/redfish/v1/Chassis": {"Members": [{"@odata.id": "/redfish/v1/Chassis/1"}]},
                "/redfish/v1/Chassis/1": {"Power": {"@odata.id": "/redfish/v1/Chassis/1/Power"}},
                "/redfish/v1/Chassis/1/Power": {"PowerControl": [{"PowerConsumedWatts": 321.0}]}}
        body = json.dumps(docs.get(self.path, {})).encode()
        self.send_response(200 if self.path in docs else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_redfish_credentials_go_in_the_auth_header_never_to_the_resolver(monkeypatch):
    import base64

    from aibench.energy import redfish

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RecordingRedfish)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    resolved = []
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: (resolved.append(host), real(host, *a, **k))[1])
    monkeypatch.delenv("AIBENCH_REDFISH_USER", raising=False)
    monkeypatch.delenv("AIBENCH_REDFISH_PASSWORD", raising=False)
    try:
        port = server.server_address[1]
        meters, why = redfish.discover(f"http://admin:s3cretpw@127.0.0.1:{port}/")
        assert not why and meters[0].read_watts() == 321.0
        assert meters[0].name == f"http://***@127.0.0.1:{port}/"
    finally:
        server.shutdown()
    assert resolved and all("s3cret" not in str(h) and "@" not in str(h) for h in resolved)
    token = base64.b64encode(b"admin:s3cretpw").decode()
    assert _RecordingRedfish.seen and all(host == f"127.0.0.1:{port}" and auth == f"Basic {token}"
                                          for _, host, auth in _RecordingRedfish.seen)


@pytest.mark.parametrize("text, redacted", [
    # The user info ends at the LAST @ of the authority (#27: `***@X@host` kept `X`).
    ("http://admin:SECRET@X@host/", "http://***@host/"),
    # A password with a space (#27: it was stored in full).
    ("http://admin:my s3cret@host/redfish", "http://***@host/redfish"),
    ("Redfish https://u:a@b c@bmc:8443/x: timed out", "Redfish https://***@bmc:8443/x: timed out"),
    # An @ after the authority (path, query) is not user info.
    ("https://host/p?mail=a@b", "https://host/p?mail=a@b"),
])
def test_user_info_is_redacted_up_to_the_last_at_sign(text, redacted):
    assert redact_url(text) == redacted


def test_split_credentials_reads_the_user_info_as_redaction_does():
    assert split_credentials("http://admin:SECRET@X@host/") == ("http://host/", "admin", "SECRET@X")
    assert split_credentials("http://admin:my s3cret@host/r") == ("http://host/r", "admin", "my s3cret")


@pytest.mark.parametrize("url, secret", [
    ("http://admin:s3cretpw@127.0.0.1:9/", "s3cretpw"),
    ("http://admin:SECRET@X@127.0.0.1:9/", "SECRET"),
    ("http://admin:pass w0rd@127.0.0.1:9/", "w0rd"),
])
def test_credentials_never_reach_the_document_or_the_output(tmp_path, url, secret):
    out = tmp_path / "run.json"
    p = run_cli("run", *TINY_GEMM, "--power", "--power-window", "0.2", "--redfish", url, "--output", str(out),
                cwd=tmp_path)
    assert p.returncode in (0, 1), p.stderr[-2000:]
    text = out.read_text()
    assert secret not in text and secret not in p.stdout + p.stderr
    assert "http://***@127.0.0.1:9/" in json.loads(text)["command"]


# ---- 3. names stay inside their directories ------------------------------------------------


@pytest.mark.parametrize("machine", ["../../x", "/tmp/abs", ".hidden", "a/b", "x" * 300])
def test_machine_names_that_would_leave_results_are_refused(tmp_path, machine):
    p = run_cli("run", *TINY_GEMM, "--machine", machine, cwd=tmp_path)
    one_line_exit_2(p, "is not allowed")
    assert not list(tmp_path.rglob("*.json")) and not Path("/tmp/abs-").exists()


@pytest.mark.parametrize("hostname, name", [("vm", "vm"), ("node1.cluster.example", "node1.cluster.example"),
                                            (".weird/host name", "weird-host-name"), ("x" * 300, "x" * 100)])
def test_the_default_machine_name_is_the_host_name_made_safe(hostname, name):
    from aibench.safety import check_machine_name, machine_name_of

    assert check_machine_name(machine_name_of(hostname)) == name


# ---- 7. signals: saved, cleaned up -----------------------------------------------------------


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_signals_save_the_document_and_remove_the_storage_test_file(tmp_path, sig, code):
    out = tmp_path / "run.json"
    data = tmp_path / "data"
    data.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "aibench.cli", "run", "--suite", "storage", "--path", str(data),
                             "--file-size", "64M", "--time-budget", "5", "--output", str(out), "--no-asv"],
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any((d / "owner").exists() for d in data.glob(".aibench-storage-*")):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr[-2000:]
    assert json.loads(out.read_text())["status"] == "interrupted"
    assert list(data.iterdir()) == [], "the storage test file was left behind"
    assert "Traceback" not in stderr


def test_a_test_directory_left_by_sigkill_is_removed_by_the_next_run(tmp_path):
    from aibench.leftovers import boot_id as _boot_id
    from aibench.suites.storage.source import remove_stale_test_dirs

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / ".aibench-storage-old"
    stale.mkdir()
    (stale / "owner").write_text(f"{dead.pid} {_boot_id()}\n")
    (stale / "testfile").write_bytes(b"x" * 4096)
    live = tmp_path / ".aibench-storage-live"
    live.mkdir()
    (live / "owner").write_text(f"{os.getppid()} {_boot_id()}\n")
    other = tmp_path / ".aibench-storage-no-owner"  # not provably ours: kept
    other.mkdir()
    assert remove_stale_test_dirs(str(tmp_path)) == [str(stale)]
    assert not stale.exists() and live.exists() and other.exists()


# ---- 9. gates fail closed ---------------------------------------------------------------------


def _case(case_id, tflops, status="passed"):
    t = 1.0 / tflops if tflops else 1.0
    return CaseResult(suite="gemm", case_id=case_id, params={}, target="cpu", impl="blas", status=status,
                      metrics={"tflops": Metric(tflops, "TFLOP/s", True)} if status == "passed" else {},
                      stats=interval_stats(t, t * 0.99, t * 1.01),
                      validation=Validation(status, 0.0, 1.0))


def _write(tmp_path, name, cases):
    path = tmp_path / f"{name}.json"
    write_atomic(path, RunDocument(command=["aibench"], machine=name, tier="quick", targets=["cpu"], system={},
                                   aibench={"version": "0", "commit": None}, cases=cases).to_dict())
    return str(path)


def test_compare_fail_below_fails_on_failed_missing_and_zero_baselines(tmp_path, capsys):
    base = _write(tmp_path, "base", [_case("x", 1.0), _case("y", 1.0)])
    failed = _write(tmp_path, "failed", [_case("x", 1.0), _case("y", 0, status="failed")])
    missing = _write(tmp_path, "missing", [_case("x", 1.0)])
    assert main(["compare", base, failed, "--fail-below", "0.9"]) == 1
    assert "failed: gemm y cpu blas failed (passed on the baseline)" in capsys.readouterr().err
    assert main(["compare", base, missing, "--fail-below", "0.9"]) == 1
    assert "missing (passed on the baseline)" in capsys.readouterr().err
    zero = _write(tmp_path, "zero", [_case("x", 0.0)])
    assert main(["compare", zero, _write(tmp_path, "any", [_case("x", 1.0)]), "--fail-below", "0.9"]) == 1
    same = _write(tmp_path, "same", [_case("x", 1.0), _case("y", 1.0)])
    assert main(["compare", base, same, "--fail-below", "0.9"]) == 0


def test_diagnose_with_a_baseline_fails_a_run_that_measured_nothing(tmp_path, capsys):
    base = _write(tmp_path, "base", [_case("x", 1.0)])
    empty = _write(tmp_path, "empty", [])
    assert main(["diagnose", empty, "--baseline", base, "--json"]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert {f["detail"] for f in findings} == {"the run has no case for this node", "in the baseline, not in this run"}


def test_fail_on_skip_and_a_run_where_everything_was_skipped(tmp_path, capsys):
    out = tmp_path / "run.json"
    args = ["run", "--suite", "gemm", "--param", "m=32", "--param", "n=32", "--param", "k=32", "--param",
            "dtype=int8,fp64", "--impl", "blas", "--time-budget", "0.05", "--no-asv", "--output", str(out)]
    assert main(args) == 0  # fp64 measured, int8 skipped (numpy has no int8 GEMM)
    assert main([*args, "--fail-on-skip"]) == 1
    assert main([*args[:10], "dtype=int8", *args[11:]]) == 1
    assert "nothing was measured: all 1 case(s) were skipped" in capsys.readouterr().err


# ---- 10. two runs in the same second ------------------------------------------------------------


def test_two_runs_started_together_keep_both_documents(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-m", "aibench.cli", "run", *TINY_GEMM, "--machine", "same"],
                              env=clean_env(), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    docs = sorted((tmp_path / "results" / "runs").glob("same-*.json"))
    assert len(docs) == 3 and len({json.loads(d.read_text())["run_id"] for d in docs}) == 3


# ---- 11. one line, never a traceback ------------------------------------------------------------


@pytest.mark.parametrize("args, needle", [
    (["--time-budget", "inf"], "--time-budget must be a number of seconds"),
    (["--time-budget", "nan"], "--time-budget must be a number of seconds"),
    (["--power-window", "inf"], "--power-window must be a number of seconds"),
    (["--ranks", "100000"], "--ranks must be between 1 and 256"),
])
def test_impossible_numbers_are_usage_errors(args, needle):
    one_line_exit_2(run_cli("run", *TINY_GEMM, *args), needle)


def test_a_test_file_larger_than_the_disk_is_a_usage_error(tmp_path):
    one_line_exit_2(run_cli("run", "--suite", "storage", "--quick", "--path", str(tmp_path), "--file-size", "500000G",
                            "--no-asv"), "not enough free space in")


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d["cases"][0]["metrics"]["tflops"].update(value="fast"), "is not a number"),
    (lambda d: d["cases"][0].update(status=None), "is not passed, failed or skipped"),
    (lambda d: d["cases"][0].update(stats={"median": "x"}), "stats.median is not a number"),
    (lambda d: d.update(cases={}), "cases is not a list"),
    (lambda d: d["cases"][0].update(metrics={"tflops": None}), "is not {value, unit, higher_is_better}"),
    (lambda d: d["cases"][0].pop("suite"), "suite is not a string"),
])
@pytest.mark.parametrize("command", ["compare", "diagnose", "plot", "publish", "accept"])
def test_schema_invalid_documents_are_one_line(tmp_path, mutate, needle, command):
    good = json.loads(Path(_write(tmp_path, "good", [_case("x", 1.0)])).read_text())
    mutate(good)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(good))
    args = {"compare": ["compare", str(bad), str(bad)], "diagnose": ["diagnose", str(bad), "--baseline", str(bad)],
            "plot": ["plot", str(bad), "--out", str(tmp_path / "p")],
            "publish": ["publish", str(bad), "--results", str(tmp_path / "r"), "--html", str(tmp_path / "h")],
            "accept": ["accept", "--spec", "generic-cpu", str(bad)]}[command]
    one_line_exit_2(run_cli(*args, cwd=tmp_path), needle)


def test_null_metric_values_are_read_as_absent(tmp_path, capsys):
    good = json.loads(Path(_write(tmp_path, "good", [_case("x", 1.0), _case("y", 2.0)])).read_text())
    good["cases"][0]["metrics"]["tflops"]["value"] = None
    path = tmp_path / "nulls.json"
    path.write_text(json.dumps(good))
    assert main(["compare", str(path), str(path), "--json"]) == 0
    assert [r["case_id"] for r in json.loads(capsys.readouterr().out)["rows"]] == ["y"]


def test_what_aibench_starts_dies_with_it():
    """mpiexec and fio get SIGTERM when aibench dies, even by SIGKILL (no orphan measuring)."""
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess; from aibench.safety import "
                               "terminate_with_parent; p = subprocess.Popen(['sleep', '60'], "
                               "preexec_fn=terminate_with_parent); print(p.pid, flush=True); p.wait()"],
                              stdout=subprocess.PIPE, text=True, env=clean_env())
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{child}").exists() and \
            Path(f"/proc/{child}/stat").read_text().split()[2] != "Z":
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists() or Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"
