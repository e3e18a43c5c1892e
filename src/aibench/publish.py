"""`aibench publish` and `aibench preview`: asv's pages from aibench run documents.

publish records every given run document (default: results/runs/*.json) in the asv
results tree (asv_export, one asv machine per node, each node of a fleet run too), runs
`asv publish` on it, writes aibench's charts (plot.py) to html/plots/, and makes the
pages self-contained (asv's third-party scripts from aibench's copies);
preview serves the pages on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .asv_export import asv_config, check_document, export_run
from .documents import load_run
from .errors import UsageError
from .fleet import split_by_node
from .safe_write import PUBLISHED_PAGE, check_directory_to_replace, prepare_directory, replace_directory, write_file

# asv's index.html loads these from CDNs; aibench ships the same libraries (www_vendor/,
# whose README says where each came from) so that the pages work without internet.
VENDORED = {
    "https://code.jquery.com/jquery-3.3.1.min.js": "jquery-3.3.1.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js": "jquery.flot-0.8.3.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js": "jquery.flot-0.8.3.time.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js":
        "jquery.flot-0.8.3.selection.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js":
        "jquery.flot-0.8.3.categories.min.js",
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": "jquery.flot.orderBars-0.2.js",
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js": "stupidtable.js",
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": "md5-2.19.0.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": "bootstrap-3.1.1.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css": "bootstrap-3.1.1.min.css",
}
_WWW_VENDOR = Path(__file__).with_name("www_vendor")
# A <script> or <link> tag whose src or href is a web URL; group 1 is the URL.
_REMOTE_TAG = re.compile(r'<(?:script|link)\b[^>]*?\b(?:src|href)="(https?://[^"]+)"[^>]*>')
# Subresource-integrity attributes: their hashes are of the CDN's bytes, and some local
# copies are the same version minified differently, which the browser would refuse.
_CDN_ATTRS = re.compile(r'\s+(?:integrity|crossorigin|referrerpolicy)="[^"]*"')


def _make_pages_self_contained(html: Path) -> list[str]:
    """Point asv's index.html at aibench's copies of its third-party files (copied to
    html/vendor/) and link aibench's plots page when publish wrote one. Returns the URLs
    that still load from the internet (a newer asv asking for files aibench lacks)."""
    prepare_directory(html / "vendor")
    for name in VENDORED.values():
        write_file(html / "vendor" / name, (_WWW_VENDOR / name).read_bytes(), PUBLISHED_PAGE, force=True)

    def localize(m: re.Match) -> str:
        tag, url = m.group(0), m.group(1)
        return _CDN_ATTRS.sub("", tag.replace(url, f"vendor/{VENDORED[url]}")) if url in VENDORED else tag

    index = html / "index.html"
    page = _REMOTE_TAG.sub(localize, index.read_text())
    if (html / "plots" / "index.html").exists():
        nav = '<li id="nav-li-graphdisplay">'
        page = page.replace(nav, f'<li><a href="plots/index.html">aibench plots</a></li>\n        {nav}', 1)
    write_file(index, page, PUBLISHED_PAGE, force=True)
    return _REMOTE_TAG.findall(page)


def _config_file(results: Path, html: Path, repo: Path) -> Path:
    conf = asv_config(results.resolve(), repo.resolve()).__dict__
    conf.update({"html_dir": str(html.resolve()), "benchmark_dir": str((repo / "suites").resolve())})
    path = Path(tempfile.mkstemp(prefix="aibench-asv-", suffix=".json")[1])
    path.write_text(json.dumps({k: v for k, v in conf.items() if isinstance(v, (str, int, float, list, dict, bool))
                                or v is None}))
    return path


def _is_published_pages(html: Path) -> bool:
    """A directory publish made before (or `asv publish`): asv's index.html and asv.js."""
    return (html / "index.html").is_file() and (html / "asv.js").is_file()


_PAGES = "published pages (asv's index.html and asv.js)"


def cmd_publish(args) -> int:
    runs = [Path(p) for p in args.runs] or sorted(Path("results/runs").glob("*.json"))
    if not runs:
        raise UsageError("no run documents given and none under results/runs/")
    # The pages replace --html whole (asv publish removes what is there): only a directory
    # of pages, or an empty one, without --force; never a link, a file or another user's.
    check_directory_to_replace(args.html, _is_published_pages, _PAGES, args.force, "--html")
    prepare_directory(args.results, "--results")
    # Every document (each node of a fleet run: one asv machine per node) is checked
    # before any is recorded: its machine name is a directory of the results tree and
    # its commit names a file there.
    loaded = []
    for path in runs:
        for doc in split_by_node(load_run(path)):
            check_document(doc, path)
            loaded.append((path, doc))
    docs = []
    for path, doc in loaded:
        try:
            export_run(doc, args.results, Path(args.repo), flag="--results")
        except ValueError as e:
            raise UsageError(f"{path}: {e}") from None
        docs.append(doc)
    # The pages are built in a new directory beside --html, which then takes its place.
    html = Path(args.html)
    html.absolute().parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{html.name}.new.", dir=html.absolute().parent))
    try:
        remote = _build_pages(docs, args, staged)
        if remote is None:
            return 1
        replace_directory(staged, html, _is_published_pages, _PAGES, args.force, "--html")
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    if remote:
        print(f"aibench: warning: the pages still load from the internet (no copy in aibench/www_vendor): "
              f"{', '.join(remote)}", file=sys.stderr)
    machines = sorted({d.machine for d in docs})
    print(f"published {len(runs)} run document(s) as {len(docs)} asv run(s) from {len(machines)} machine(s) ({', '.join(machines)}) to {args.html}")
    return 0


def _build_pages(docs: list, args, staged: Path) -> list[str] | None:
    """asv's pages and aibench's plots in `staged`, made self-contained. Returns the URLs
    the pages still load from the internet, or None when asv publish failed."""
    conf = _config_file(args.results, staged, Path(args.repo))
    try:
        p = subprocess.run([sys.executable, "-m", "asv", "publish", "--config", str(conf)], capture_output=True,
                           text=True)
    finally:
        conf.unlink(missing_ok=True)
    if p.returncode != 0:
        print(f"aibench: asv publish failed: {(p.stderr or p.stdout).strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    from .plot import write_index, write_plots

    plots = staged / "plots"
    pngs = write_plots(docs, plots, flag="--html")
    if pngs:
        write_index(pngs, plots, flag="--html")
        print(f"plots: {Path(args.html) / 'plots' / 'index.html'} ({len(pngs)} chart(s))")
    # Last, once every page (asv's and aibench's plots) is written.
    return _make_pages_self_contained(staged)


def cmd_preview(args) -> int:
    html = Path(args.html)
    if not (html / "index.html").exists():
        raise UsageError(f"no published pages in {html} (run `aibench publish` first)")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    with http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler) as server:
        print(f"serving {html} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)", flush=True)
        server.serve_forever()
    return 0


def add_parser(sub) -> None:
    p_pub = sub.add_parser("publish", help="record run documents in the asv results tree and build asv's pages")
    p_pub.add_argument("runs", nargs="*", help="run documents (default: results/runs/*.json)")
    p_pub.add_argument("--results", type=Path, default=Path("results"), help="asv results tree (default results/)")
    p_pub.add_argument("--html", type=Path, default=Path("html"), help="where the pages go (default html/)")
    p_pub.add_argument("--repo", default=".", help="the aibench git checkout the runs' commits belong to")
    p_pub.add_argument("--force", action="store_true",
                       help="let the pages replace a directory of yours that does not hold published pages")

    p_pre = sub.add_parser("preview", help="serve the published pages on 127.0.0.1")
    p_pre.add_argument("--html", type=Path, default=Path("html"))
    p_pre.add_argument("--port", type=int, default=8080)
