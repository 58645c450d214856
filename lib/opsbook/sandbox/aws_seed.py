"""Seed moto with the estate described by params (placeholder: filled in by the seed work)."""

from __future__ import annotations

from opsbook.params import Params


def seed_estate(params: Params, env: dict[str, str], facts: dict[str, object]) -> None:
    """Create the estate's AWS resources in moto through boto3."""
