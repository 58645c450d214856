"""The local twin of the estate (see DESIGN.md, "The sandbox")."""

from opsbook.sandbox.core import Sandbox, SandboxContext, exported, register

__all__ = ["Sandbox", "SandboxContext", "exported", "register"]
