"""What every service wrapper shares: the model base and reading AWS error codes."""

from __future__ import annotations

import botocore.exceptions
from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A frozen view of one resource as the API reported it."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def error_code(exc: Exception) -> str:
    """The AWS error code of a ClientError ('' for anything else)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""
