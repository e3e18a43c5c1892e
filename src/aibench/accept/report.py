"""The acceptance report a buyer keeps: report.json (the record), report.md and
report.html (rendered from report.json alone, deterministically), and inputs/ holding
the judged run documents and spec files with their SHA-256 in report.json.

`aibench accept --verify DIR` checks that the inputs still hash to what the report says,
that judging them again gives the report's verdicts, and that report.md and report.html
are what report.json renders to: an edited byte anywhere is a mismatch.
"""

from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path
from typing import Any

from .. import __version__
from ..fleet import node_documents
from ..results import RunDocument
from ..safe_write import (ACCEPT_REPORT_HTML, ACCEPT_REPORT_JSON, ACCEPT_REPORT_MD, REPORT_INPUT, Kind, check_target,
                          prepare_directory, write_file)
from .judge import NodeJudgement

REPORT_SCHEMA = "aibench.acceptance"
REPORT_VERSION = 1


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _node_summary(doc: RunDocument) -> dict[str, Any]:
    s = doc.system or {}
    cpu, gpus = s.get("cpu") or {}, s.get("gpus") or {}
    return {
        "machine": doc.machine, "hostname": s.get("hostname"), "run_id": doc.run_id, "tier": doc.tier,
        "targets": doc.targets, "started_at": doc.started_at, "status": doc.status,
        "cpu": f"{cpu.get('model')} ({cpu.get('arch')}), {cpu.get('cores')} cores, best ISA {cpu.get('best_isa')}",
        "gpus": [d.get("name") for d in gpus.get("devices") or []],
        "nics": None if s.get("nics") is None else  # None: a document from before aibench recorded NICs
        [f"{n.get('name')} {n.get('kind')} {n.get('speed_gbps')} Gbit/s" for n in s["nics"]],
        "software": {"aibench": (doc.aibench or {}).get("version"), "commit": (doc.aibench or {}).get("commit"),
                     "os": f"{(s.get('os') or {}).get('system')} {(s.get('os') or {}).get('release')}",
                     "python": (s.get("python") or {}).get("version"),
                     "nvidia_driver": gpus.get("nvidia_driver"), "cuda_runtime": gpus.get("runtime_version"),
                     "mpi": ((s.get("mpi") or {}).get("library")),
                     "blas": ", ".join(f"{b.get('internal_api')} {b.get('version')}" for b in s.get("blas") or [])},
        "command": " ".join(doc.command),
    }


def input_names(run_files: list[Path], spec_files: list[Path], references: dict[str, Path]) -> dict[Path, str]:
    """Where each input goes under DIR/inputs/ (spec files keep their names: includes
    find each other by name)."""
    names = {p: f"inputs/run{i + 1}-{p.name}" for i, p in enumerate(run_files)}
    names.update({p: f"inputs/{p.name}" for p in spec_files})
    names.update({p: f"inputs/reference-{p.name}" for p in references.values()})
    return names


def _case_tries(docs: list[RunDocument], run_files: list[Path]) -> dict[tuple, list[tuple[str, Any]]]:
    """(node, suite, "case [impl]") -> [(run label, the case in that run)], in run order."""
    tries: dict[tuple, list[tuple[str, Any]]] = {}
    for i, doc in enumerate(docs):
        run = f"run{i + 1}-{run_files[i].name}" if i < len(run_files) else f"run{i + 1}"
        for node in node_documents(doc):
            for c in node.cases:
                tries.setdefault((node.machine, c.suite, f"{c.case_id} [{c.impl}]"), []).append((run, c))
    return tries


def _retries(spec, j: NodeJudgement, tries: dict[tuple, list[tuple[str, Any]]]) -> list[dict[str, Any]]:
    """Every judged case of the node that more than one run document holds (accept's reruns
    of an inconclusive check, or runs given in that order): each try's figure, interval and
    window health, in run order. The last try is the one judged."""
    from ..compare import headline_interval
    from ..health import window_problems

    checks = {c.id: c for c in spec.checks}
    out = []
    for v in j.verdicts:
        check, held = checks.get(v.check), tries.get((j.node, v.suite, v.case), [])
        if check is None or len(held) < 2:
            continue
        rows = []
        for run, c in held:
            m = c.metrics.get(v.metric)
            unhealthy, unknown = window_problems(c.health, check.health) if check.health else ([], [])
            interval = headline_interval(c, v.metric) if m else None
            rows.append({"run": run, "status": c.status, "value": m.value if m else None,
                         "interval": list(interval) if interval else None,
                         "health": "; ".join(unhealthy + unknown) or ("ok" if check.health else None)})
        out.append({"check": v.check, "case": v.case, "verdict": v.verdict, "tries": rows})
    return out


def build_report(spec, judgements: list[NodeJudgement], docs: list[RunDocument], run_files: list[Path],
                 spec_files: list[Path], references: dict[str, Path], commands: list[str]) -> dict[str, Any]:
    summaries = {}
    for doc in docs:
        for node in node_documents(doc):
            summaries[node.machine] = _node_summary(node)
    nodes = []
    tries = _case_tries(docs, run_files)
    for j in judgements:
        counts = {k: sum(v.verdict == k for v in j.verdicts) for k in ("pass", "fail", "inconclusive", "missing")}
        nodes.append({"node": j.node, "accepted": j.passed, "hardware_problems": j.hardware_problems,
                      "counts": counts, "identity": summaries.get(j.node, {}),
                      "checks": [v.to_dict() for v in j.verdicts], "retries": _retries(spec, j, tries)})
    return {
        "schema": REPORT_SCHEMA, "schema_version": REPORT_VERSION, "aibench": __version__,
        "spec": {"name": spec.name, "description": spec.description, "tier": spec.tier},
        "accepted": bool(nodes) and all(n["accepted"] for n in nodes),
        "rejected_nodes": [n["node"] for n in nodes if not n["accepted"]],
        "nodes": nodes,
        "commands": commands,
        "inputs": _inputs(run_files, spec_files, references),
    }


def _inputs(run_files: list[Path], spec_files: list[Path], references: dict[str, Path]) -> dict[str, Any]:
    names = input_names(run_files, spec_files, references)
    return {"runs": [{"file": names[p], "sha256": sha256_file(p)} for p in run_files],
            "specs": [{"file": names[p], "sha256": sha256_file(p)} for p in spec_files],
            "references": [{"name": n, "file": names[p], "sha256": sha256_file(p)} for n, p in references.items()]}


def _all_inputs(report: dict[str, Any]) -> list[dict[str, Any]]:
    i = report["inputs"]
    return i["runs"] + i["specs"] + i.get("references", [])


# ---- rendering (from report.json alone: --verify renders again and compares) -----------

_STYLE = {"pass": "#1a7f37", "fail": "#cf222e", "inconclusive": "#9a6700", "missing": "#8250df"}


def _fmt(x: Any) -> str:
    return "" if x is None else (f"{x:.4g}" if isinstance(x, float) else str(x))


def _software(identity: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in (identity.get("software") or {}).items() if v)


def _nics(identity: dict[str, Any]) -> str:
    nics = identity.get("nics")
    return "not recorded in the run document" if nics is None else ", ".join(nics) or "none"


def _try_text(t: dict[str, Any]) -> str:
    interval = f" [{_fmt(t['interval'][0])}, {_fmt(t['interval'][1])}]" if t["interval"] and len(t["interval"]) == 2 else ""
    health = f", health {t['health']}" if t["health"] else ""
    return f"{t['run']}: {t['status']} {_fmt(t['value'])}{interval}{health}"


def render_markdown(report: dict[str, Any]) -> str:
    out = [f"# Acceptance report: {report['spec']['name']}", "",
           f"**Verdict: {'ACCEPTED' if report['accepted'] else 'REJECTED'}**"
           + (f" (rejected: {', '.join(report['rejected_nodes'])})" if report["rejected_nodes"] else ""), "",
           report["spec"]["description"] or "", ""]
    for n in report["nodes"]:
        ident = n["identity"]
        out += [f"## Node {n['node']}: {'accepted' if n['accepted'] else 'rejected'}", "",
                f"- CPU: {ident.get('cpu')}", f"- GPUs: {', '.join(map(str, ident.get('gpus') or [])) or 'none'}",
                f"- NICs: {_nics(ident)}",
                f"- software: {_software(ident)}",
                f"- run {ident.get('run_id')} ({ident.get('tier')}, {ident.get('started_at')}): `{ident.get('command')}`",
                ""]
        for p in n["hardware_problems"]:
            out.append(f"- **hardware does not match:** {p}")
        out += ["", "| check | verdict | case | measured | threshold | margin | source | reason |",
                "|---|---|---|---|---|---|---|---|"]
        for c in n["checks"]:
            measured = f"{_fmt(c['value'])} {c['unit'] or ''}".strip()
            margin = f"{c['margin']:+.1%}" if c["margin"] is not None else ""
            cells = [c["check"], c["verdict"].upper(), c["case"] or "", measured, c["threshold"], margin, c["source"],
                     c["reason"]]
            out.append("| " + " | ".join(x.replace("|", "\\|").replace("\n", " ") for x in cells) + " |")
        out.append("")
        for r in n.get("retries") or []:
            out.append(f"- retried: {r['check']} on {r['case']} ({len(r['tries'])} tries, judged on the last: "
                       f"{r['verdict']}): " + "; ".join(_try_text(t) for t in r["tries"]))
        if n.get("retries"):
            out.append("")
    out += ["## Commands", ""] + [f"- `{c}`" for c in report["commands"]] + ["", "## Inputs (SHA-256)", ""]
    out += [f"- `{i['file']}` {i['sha256']}" for i in _all_inputs(report)]
    out.append("")
    return "\n".join(out)


def _chart(checks: list[dict[str, Any]]) -> str:
    """An inline SVG: each check's measured value over its threshold (1.0 = the threshold)."""
    rows = [c for c in checks if c["value"] is not None and c["limit"]]
    if not rows:
        return ""
    width, label_w, bar_w, row_h = 760, 260, 440, 22
    ratios = [(c["margin"] + 1) if c["margin"] is not None else 0 for c in rows]
    top = max(2.0, max(ratios) * 1.05)
    scale = bar_w / top
    height = row_h * len(rows) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i, (c, r) in enumerate(zip(rows, ratios)):
        y = 10 + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12">'
                     f'{html.escape(c["check"])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{max(1.0, r * scale):.1f}" height="{row_h - 8}" '
                     f'fill="{_STYLE.get(c["verdict"], "#888")}"><title>{html.escape(c["check"])}: '
                     f'{_fmt(c["value"])} {html.escape(c["unit"] or "")} vs {html.escape(c["threshold"])}</title></rect>')
        parts.append(f'<text x="{label_w + max(1.0, r * scale) + 4:.1f}" y="{y + 14}" font-size="11">{r:.2f}x</text>')
    x1 = label_w + scale
    parts.append(f'<line x1="{x1:.1f}" y1="5" x2="{x1:.1f}" y2="{height - 18}" stroke="#000" stroke-dasharray="4 3"/>')
    parts.append(f'<text x="{x1:.1f}" y="{height - 4}" text-anchor="middle" font-size="11">threshold (1.0x)</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    e = lambda x: html.escape(_fmt(x))  # noqa: E731 - every string from the documents is escaped
    verdict = "ACCEPTED" if report["accepted"] else "REJECTED"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>aibench acceptance: {e(report['spec']['name'])}</title>",
           "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
           "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}"
           ".v{font-weight:bold;color:#fff;padding:2px 6px;border-radius:3px}"
           + "".join(f".{k}{{background:{c}}}" for k, c in _STYLE.items()) + "</style></head><body>",
           f"<h1>Acceptance report: {e(report['spec']['name'])}</h1>",
           f'<p><span class="v {"pass" if report["accepted"] else "fail"}">{verdict}</span> '
           + (f"rejected nodes: {e(', '.join(report['rejected_nodes']))}" if report["rejected_nodes"] else "")
           + "</p>", f"<p>{e(report['spec']['description'])}</p>"]
    for n in report["nodes"]:
        ident = n["identity"]
        out.append(f"<h2>Node {e(n['node'])}: {'accepted' if n['accepted'] else 'rejected'}</h2><ul>")
        out.append(f"<li>CPU: {e(ident.get('cpu'))}</li><li>GPUs: {e(', '.join(map(str, ident.get('gpus') or [])) or 'none')}</li>")
        out.append(f"<li>NICs: {e(_nics(ident))}</li>")
        out.append(f"<li>software: {e(_software(ident))}</li><li>run {e(ident.get('run_id'))} ({e(ident.get('tier'))}, "
                   f"{e(ident.get('started_at'))}): <code>{e(ident.get('command'))}</code></li></ul>")
        for p in n["hardware_problems"]:
            out.append(f'<p><span class="v fail">hardware does not match</span> {e(p)}</p>')
        out.append("<table><tr><th>check</th><th>verdict</th><th>case</th><th>measured</th><th>threshold</th>"
                   "<th>margin</th><th>source</th><th>reason</th></tr>")
        for c in n["checks"]:
            margin = f"{c['margin']:+.1%}" if c["margin"] is not None else ""
            out.append(f"<tr><td>{e(c['check'])}</td><td><span class=\"v {e(c['verdict'])}\">{e(c['verdict'])}</span>"
                       f"</td><td>{e(c['case'])}</td><td>{e(c['value'])} {e(c['unit'])}</td><td>{e(c['threshold'])}</td>"
                       f"<td>{e(margin)}</td><td>{e(c['source'])}</td><td>{e(c['reason'])}</td></tr>")
        out.append("</table>")
        if n.get("retries"):
            out.append("<h3>Retries</h3><ul>" + "".join(
                f"<li>{e(r['check'])} on {e(r['case'])} ({len(r['tries'])} tries, judged on the last: "
                f"{e(r['verdict'])}): {e('; '.join(_try_text(t) for t in r['tries']))}</li>"
                for r in n["retries"]) + "</ul>")
        for suite in dict.fromkeys(c["suite"] for c in n["checks"]):
            chart = _chart([c for c in n["checks"] if c["suite"] == suite])
            if chart:
                out.append(f"<h3>{e(suite)}: measured / threshold</h3>{chart}")
    out.append("<h2>Commands</h2><ul>" + "".join(f"<li><code>{e(c)}</code></li>" for c in report["commands"]) + "</ul>")
    out.append("<h2>Inputs (SHA-256)</h2><ul>" + "".join(
        f"<li><code>{e(i['file'])}</code> {e(i['sha256'])}</li>"
        for i in _all_inputs(report)) + "</ul>")
    out.append(f"<p>aibench {e(report['aibench'])}; check with <code>aibench accept --verify DIR</code>.</p>")
    out.append("</body></html>\n")
    return "\n".join(out)


def _report_files(report_dir: Path) -> dict[Path, Kind]:
    return {report_dir / "report.json": ACCEPT_REPORT_JSON, report_dir / "report.md": ACCEPT_REPORT_MD,
            report_dir / "report.html": ACCEPT_REPORT_HTML}


def check_report_dir(report_dir: Path, force: bool = False) -> None:
    """Refuse (one line, exit 2) a --report DIR aibench would not write, before anything
    is measured: DIR and DIR/inputs are real directories of ours (created when missing),
    and report.json, .md and .html are absent or an earlier report of ours (safe_write)."""
    prepare_directory(report_dir, "--report")
    prepare_directory(report_dir / "inputs", "--report")
    for path, kind in _report_files(report_dir).items():
        check_target(path, kind, force, "--report")


def write_report(report_dir: Path, report: dict[str, Any], run_files: list[Path], spec_files: list[Path],
                 references: dict[str, Path], force: bool = False) -> None:
    """Every file by safe_write's rules: nothing is written through a link already in DIR
    (#27: the report overwrote another user's file that way)."""
    check_report_dir(report_dir, force)
    for src, name in input_names(run_files, spec_files, references).items():
        if src.resolve() != (report_dir / name).resolve():
            write_file(report_dir / name, src.read_bytes(), REPORT_INPUT, force, "--report")
    text = json.dumps(report, indent=1) + "\n"
    report = json.loads(text)  # render what a reader of report.json sees (as --verify does)
    rendered = {"report.json": text, "report.md": render_markdown(report), "report.html": render_html(report)}
    for path, kind in _report_files(report_dir).items():
        write_file(path, rendered[path.name], kind, force, "--report")


def verify_report(report_dir: Path) -> list[str]:
    """Every way the report no longer matches its data (empty: it matches). A report.json
    that is not an acceptance report is a UsageError (documents.load_report)."""
    from ..documents import REPORT_MAX_BYTES, load_report, load_run, read_bytes
    from ..errors import UsageError
    from .judge import judge_runs
    from .spec import SpecError, load_specs

    problems: list[str] = []
    report = load_report(report_dir / "report.json")
    for entry in _all_inputs(report):
        path = report_dir / entry["file"]
        if path.is_symlink() or not path.is_file():  # a link could point at any file of the reader's
            problems.append(f"{entry['file']} is missing (or not a plain file)")
        elif sha256_file(path) != entry["sha256"]:
            problems.append(f"{entry['file']} does not match its SHA-256 in report.json (it was changed)")
    for name, render in (("report.md", render_markdown), ("report.html", render_html)):
        try:
            if read_bytes(report_dir / name, REPORT_MAX_BYTES, name) != render(report).encode("utf-8"):
                problems.append(f"{name} is not what report.json renders to (it was edited)")
        except UsageError:
            problems.append(f"{name} is missing (or not a plain file)")
    if problems:
        return problems
    # The data is intact: judging it again must give the report's verdicts.
    try:
        spec = load_specs([str(report_dir / report["inputs"]["specs"][0]["file"])])
        docs = [load_run(report_dir / r["file"]) for r in report["inputs"]["runs"]]
        references = {r["name"]: load_run(report_dir / r["file"]) for r in report["inputs"].get("references", [])}
    except (SpecError, UsageError) as e:
        return [f"the inputs cannot be judged again: {e}"]
    again = {(j.node, v.check): v.verdict for j in judge_runs(spec, docs, references) for v in j.verdicts}
    recorded = {(n["node"], c["check"]): c["verdict"] for n in report["nodes"] for c in n["checks"]}
    for key in sorted(set(again) | set(recorded)):
        if again.get(key) != recorded.get(key):
            problems.append(f"node {key[0]} check {key[1]}: the report says {recorded.get(key)}, "
                            f"judging the inputs gives {again.get(key)}")
    return problems
