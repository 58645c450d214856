"""What every service wrapper shares: the model base and reading AWS error codes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A frozen view of one resource as the API reported it."""

    model_config = ConfigDict(frozen=True, extra="forbid")



