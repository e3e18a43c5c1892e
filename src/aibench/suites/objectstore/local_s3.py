"""The embedded S3 endpoint: moto's ThreadedMotoServer on 127.0.0.1, in a child process
(so that its request handling does not share the GIL with the clients being measured).

It is a correctness endpoint: moto reads the whole object under a lock on every GET (about
0.7 GB/s and 400 objects/s on a small VM), so its throughput means nothing as a storage
figure. The child exits when its parent closes its standard input (or dies).

Run as `python -m aibench.suites.objectstore.local_s3`: prints the port, then serves.
"""

from __future__ import annotations

import importlib.util
import os
import select
import subprocess
import sys
import tempfile

# moto's server accepts any signature, but refuses unsigned requests: sign with these.
DUMMY_ACCESS_KEY = "aibench-local"
DUMMY_SECRET_KEY = "aibench-local-secret"
REGION = "us-east-1"
NOTE = ("local S3 endpoint (moto) on 127.0.0.1 started by aibench: a correctness endpoint only; the endpoint "
        "is the bottleneck, and its throughput means nothing as a storage figure (give --url for a real store)")


# What the server needs: moto's S3 backend and the Flask app moto's server is made of.
# All come with `pip install aibench`; a trimmed environment may lack one.
SERVER_MODULES = {"moto": "moto[s3]", "flask": "flask", "flask_cors": "flask-cors"}


class EndpointUnavailable(Exception):
    """The embedded endpoint cannot run here (a package is missing): one line."""


def missing_packages() -> list[str]:
    """The pip names of the server's packages that are not installed."""
    return [pip for module, pip in SERVER_MODULES.items() if importlib.util.find_spec(module) is None]


def server_command() -> list[str]:
    return [sys.executable, "-m", "aibench.suites.objectstore.local_s3"]


class LocalS3:
    """A moto S3 server in a child process; `endpoint` is http://127.0.0.1:PORT."""

    def __init__(self, start_timeout_s: float = 60.0):
        missing = missing_packages()
        if missing:
            raise EndpointUnavailable(
                f"the embedded S3 endpoint needs {', '.join(missing)} (pip install {' '.join(missing)}), "
                "or give --url s3://bucket/prefix for a real store")
        self._log = tempfile.TemporaryFile()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(server_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, env=env)
        ready, _, _ = select.select([self.proc.stdout], [], [], start_timeout_s)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line.isdigit():
            self._log.seek(0)  # read the child's last words before close() drops the log
            tail = self._log.read().decode(errors="replace").strip().splitlines()
            self.close()
            raise RuntimeError("the local S3 endpoint (moto) did not start within "
                               f"{start_timeout_s:.0f} s: " + (tail[-1] if tail else "it printed nothing"))
        self.port = int(line)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


def _serve() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    try:
        sys.stdin.buffer.read()  # until the parent closes stdin or exits
    finally:
        server.stop()


if __name__ == "__main__":
    _serve()
