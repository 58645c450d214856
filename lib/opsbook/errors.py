"""opsbook's errors: each says what happened and what the on-call engineer can do next."""


class OpsbookError(Exception):
    """A failure opsbook understands; the CLI prints it without a traceback."""

    exit_code = 1


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
