"""Secret values that never print, and masking of every secret a run has seen."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
_SEEN: set[str] = set()
# parameter names that carry secrets (masked in results.json whatever their value)
SECRET_NAME = re.compile(r"(password|secret|token|api_?key|app_?key|credential)", re.IGNORECASE)


class Secret:
    """A secret value: `reveal()` gives it to a client; str/repr never show it."""

    __slots__ = ("_value", "name")

    def __init__(self, value: str, name: str = "") -> None:
        self._value = value
        self.name = name
        if value:
            _SEEN.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.name or 'value'}={MASK})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def mask_text(text: str) -> str:
    """Replace every secret value seen in this process by the mask."""
    for value in sorted(_SEEN, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def mask(value: Any, key: str = "", by_name: bool = True) -> Any:
    """Mask secrets inside a JSON-like value: every value seen as a Secret and, when
    `by_name`, the values of keys that name a secret (parameters such as `db_password`)."""
    if by_name and key and SECRET_NAME.search(key) and value not in (None, ""):
        return MASK
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask(v, str(k), by_name) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v, by_name=by_name) for v in value]
    return value
