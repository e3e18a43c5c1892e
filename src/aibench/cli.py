"""`aibench list | info | run | compare | diagnose | accept | publish | preview | plot | preflight`: the command line.

Each subcommand lives in its own module (listing, info, run, compare, diagnose, accept,
publish, plot), which adds its parser (`add_parser`) and runs it (`cmd_<name>`).

Exit codes: 0 every case passed; 1 some case failed (the others ran and were saved);
2 usage error, printed as one line; 3 an MPI rank stopped answering (watchdog.py);
130 interrupted (finished cases are saved).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import __version__
from .errors import UsageError

# subcommand -> (module, function) that runs it; the module also adds its parser.
COMMANDS = {
    "list": ("listing", "cmd_list"), "info": ("info", "cmd_info"), "run": ("run", "cmd_run"),
    "compare": ("compare", "cmd_compare"), "diagnose": ("diagnose", "cmd_diagnose"),
    "accept": ("accept", "cmd_accept"), "publish": ("publish", "cmd_publish"),
    "preview": ("publish", "cmd_preview"), "plot": ("plot", "cmd_plot"),
    "preflight": ("preflight", "cmd_preflight"),
}
# Commands that are given the whole command line (they record it).
_WITH_ARGV = {"run", "accept"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aibench", description="What an AI node really delivers, measured and validated.")
    parser.add_argument("--version", action="version", version=f"aibench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in dict.fromkeys(m for m, _ in COMMANDS.values()):
        importlib.import_module(f".{module}", __package__).add_parser(sub)
    return parser


def check_isa_cap() -> None:
    """AIBENCH_CPU_ISA (a cap on the own kernels' instruction level) must name a level this
    CPU can run: a usage error here, before any case, not a failed case per kernel."""
    if not os.environ.get("AIBENCH_CPU_ISA"):
        return
    from . import _core

    try:
        _core.isa_level_cap()
    except ValueError as e:
        raise UsageError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        check_isa_cap()
        module, function = COMMANDS[args.command]
        cmd = getattr(importlib.import_module(f".{module}", __package__), function)
        return cmd(args, ["aibench", *argv]) if args.command in _WITH_ARGV else cmd(args)
    except UsageError as e:
        print(f"aibench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aibench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `aibench compare ... | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except Exception:
        from .mpi import abort_on_crash

        abort_on_crash()  # an MPI job of several ranks: abort them all rather than hang
        raise


if __name__ == "__main__":
    sys.exit(main())
