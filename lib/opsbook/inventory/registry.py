"""The health check's two registries: collectors read the estate, checks judge what they read.

A collector reads one section of the estate through the service wrappers and is
registered beside its definition (`@COLLECTORS.register("network")` on `collect_network`).
A check is one function decorated with `@health_check(...)`: its parameters name the
sections it reads (collector names) plus any of `params`, `now` and `thresholds`, so
adding a check is that one function.

    @health_check("vpc", section=NETWORK, resource=lambda p: p.network.vpc_cidr)
    def check_vpc(network: Network, params: Params) -> list[Check]: ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opsbook.params import Params
from opsbook.registry import Registry

Collector = Callable[[Any], Any]  # Env -> what one section holds
CONTEXT = ("params", "now", "thresholds")  # what a check may ask for besides estate sections

COLLECTORS: Registry[Collector] = Registry("estate section", [
    "opsbook.inventory.network", "opsbook.inventory.eks", "opsbook.inventory.kube", "opsbook.inventory.rds",
    "opsbook.inventory.s3", "opsbook.inventory.dynamodb", "opsbook.inventory.kms", "opsbook.inventory.cloudtrail",
    "opsbook.inventory.acm", "opsbook.inventory.ssm",
])


@dataclass(frozen=True)
class HealthCheck:
    """Checks of one kind: the sections they read, and what stands in for them when unreadable."""

    section: str
    check: str
    resource: Callable[[Params], str]
    needs: tuple[str, ...]
    func: Callable[..., list[Any]]

    def run(self, sections: dict[str, Any], **context: Any) -> list[Any]:
        wanted = inspect.signature(self.func).parameters
        return self.func(**{name: sections[name] if name in self.needs else context[name] for name in wanted})


CHECKS: Registry[HealthCheck] = Registry("health check", ["opsbook.inventory.checks"])


def health_check(check: str, section: str, resource: Callable[[Params], str]) -> Callable[[Callable], Callable]:
    """Register a check function; its parameters other than params/now/thresholds are sections."""

    def decorator(func: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
        needs = tuple(name for name in inspect.signature(func).parameters if name not in CONTEXT)
        CHECKS.register(check, module=func.__module__)(HealthCheck(section, check, resource, needs, func))
        return func

    return decorator
