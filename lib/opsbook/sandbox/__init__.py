"""The local twin of the estate (see DESIGN.md, "The sandbox")."""

from opsbook.sandbox.core import Sandbox, SandboxContext, exported

__all__ = ["Sandbox", "SandboxContext", "exported"]
