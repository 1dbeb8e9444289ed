"""Routing policies, chosen by name from one table."""

from __future__ import annotations

import random
from collections.abc import Callable

from gllm.balancer.policies.base import Policy, RoutingContext
from gllm.balancer.policies.least_busy import LeastBusy

PolicyFactory = Callable[[int, random.Random], Policy]

# name -> factory(check_size, rng)
POLICIES: dict[str, PolicyFactory] = {
    LeastBusy.name: lambda check_size, rng: LeastBusy(check_size, rng),
}


def make_policy(name: str, check_size: int, rng: random.Random) -> Policy:
    """Build the policy registered under `name`; ValueError lists the known names."""
    try:
        factory = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; choose one of: {', '.join(sorted(POLICIES))}") from None
    return factory(check_size, rng)


__all__ = ["POLICIES", "Policy", "RoutingContext", "make_policy"]
