"""The ways a request or a case can go wrong that are not a failed case (any exception
inside a case fails that case; runner.py and suites/kernel.py record it)."""


class UsageError(Exception):
    """Bad input (unknown suite, malformed parameter, impossible size): one line, exit 2."""


class SkipCase(Exception):
    """This case cannot run here (no GPU, no library, no instruction set): skipped, with why."""
