"""`aibench publish` and `aibench preview`: asv's pages from aibench run documents.

publish records every given run document (default: results/runs/*.json) in the asv
results tree (asv_export, one asv machine per node) and runs `asv publish` on it;
preview serves the pages on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .asv_export import asv_config, export_run
from .compare import load_run
from .errors import UsageError


def _config_file(results: Path, html: Path, repo: Path) -> Path:
    conf = asv_config(results.resolve(), repo.resolve()).__dict__
    conf.update({"html_dir": str(html.resolve()), "benchmark_dir": str((repo / "suites").resolve())})
    path = Path(tempfile.mkstemp(prefix="aibench-asv-", suffix=".json")[1])
    path.write_text(json.dumps({k: v for k, v in conf.items() if isinstance(v, (str, int, float, list, dict, bool))
                                or v is None}))
    return path


def cmd_publish(args) -> int:
    runs = [Path(p) for p in args.runs] or sorted(Path("results/runs").glob("*.json"))
    if not runs:
        raise UsageError("no run documents given and none under results/runs/")
    docs = [load_run(p) for p in runs]
    for path, doc in zip(runs, docs):
        try:
            export_run(doc, args.results, Path(args.repo))
        except ValueError as e:
            raise UsageError(f"{path}: {e}") from None
    conf = _config_file(args.results, args.html, Path(args.repo))
    try:
        p = subprocess.run([sys.executable, "-m", "asv", "publish", "--config", str(conf)], capture_output=True,
                           text=True)
    finally:
        conf.unlink(missing_ok=True)
    if p.returncode != 0:
        print(f"aibench: asv publish failed: {(p.stderr or p.stdout).strip().splitlines()[-1:]}", file=sys.stderr)
        return 1
    machines = sorted({d.machine for d in docs})
    print(f"published {len(docs)} run(s) from {len(machines)} machine(s) ({', '.join(machines)}) to {args.html}")
    return 0


def cmd_preview(args) -> int:
    html = Path(args.html)
    if not (html / "index.html").exists():
        raise UsageError(f"no published pages in {html} (run `aibench publish` first)")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    with http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler) as server:
        print(f"serving {html} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)", flush=True)
        server.serve_forever()
    return 0
