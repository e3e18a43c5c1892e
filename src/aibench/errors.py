"""The three ways a request or a case can go wrong, each with its own exit path."""


class UsageError(Exception):
    """Bad input (unknown suite, malformed parameter, impossible size): one line, exit 2."""


class SkipCase(Exception):
    """This case cannot run here (no GPU, no library, no instruction set): skipped, with why."""


class CaseFailure(Exception):
    """The case ran but its result is wrong or it could not complete: failed, exit 1."""
