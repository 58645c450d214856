"""The options of one request (or one controller's write) that the verbs act on."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Call:
    """Per-request options: dryRun, fieldValidation, the field manager, force; warnings to send back."""

    dry_run: bool = False
    field_validation: str = "Warn"
    warnings: list[str] = field(default_factory=list)
    manager: str = "unknown"
    force: bool = False
