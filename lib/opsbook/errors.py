"""opsbook's errors: each says what happened and what the on-call engineer can do next.

The message names what is wrong and what was expected; `remedy`, when the fix is
known, says what to do next and is shown as the last line:

    >>> print(UsageError("month: expected YYYY-MM such as 2025-03, got '3/2025'", remedy="pass month='2025-03'"))
    month: expected YYYY-MM such as 2025-03, got '3/2025'
    what to do: pass month='2025-03'
"""

from __future__ import annotations

REMEDY_PREFIX = "what to do: "


class OpsbookError(Exception):
    """A failure opsbook understands; the CLI prints it without a traceback."""

    exit_code = 1

    def __init__(self, message: str = "", *, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy or None

    def __str__(self) -> str:
        if not self.remedy:
            return self.message
        return f"{self.message}\n{REMEDY_PREFIX}{self.remedy}"

    def one_line(self) -> str:
        """The message and the remedy on one line (for a table cell or a recorded reason)."""
        return f"{self.message}; {REMEDY_PREFIX}{self.remedy}" if self.remedy else self.message


def remedies(*parts: str | None) -> str | None:
    """Several remedies as one, in order, each once (None when there are none)."""
    return "; then ".join(dict.fromkeys(p for p in parts if p)) or None


class ParamsError(OpsbookError, ValueError):
    """Params that fail validation: names the file, the field and what is expected."""

    exit_code = 2


class UsageError(OpsbookError, ValueError):
    """Bad input given on the command line or as a notebook parameter."""

    exit_code = 2


class CredentialsError(OpsbookError):
    """No usable credentials for a service."""

    exit_code = 3


class GuardError(OpsbookError):
    """A change refused by the safety guard (apply, confirm, production approval)."""

    exit_code = 4


class EndpointError(OpsbookError):
    """An AWS endpoint answered 5xx for an action (it failed, or does not implement it)."""
