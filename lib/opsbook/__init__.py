"""opsbook: executable runbooks and cost notebooks for the SMSAPI platform."""

from opsbook.clients import Env, open_env
from opsbook.results import record

__all__ = ["Env", "open_env", "record"]
__version__ = "0.1.0"
