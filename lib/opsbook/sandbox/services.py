"""Importing this module registers the sandbox's services, in start order."""

from opsbook.sandbox import aws  # noqa: F401  (moto first: later seeds use its resources)
