"""The cluster as the balancer knows it: its workers, its model, and the policy that routes among them."""

from __future__ import annotations

from dataclasses import dataclass

from gllm.balancer.policies import Policy
from gllm.balancer.registry import Registry


@dataclass(slots=True)
class Cluster:
    """Shared state of one balancer instance (built by create_app; never global)."""

    registry: Registry
    policy: Policy
    model: str | None = None

    def model_names(self) -> list[str]:
        """The cluster model and any other model a worker reports, without duplicates."""
        names: list[str] = []
        for name in [self.model, *(w.model for w in self.registry.all())]:
            if name and name not in names:
                names.append(name)
        return names
