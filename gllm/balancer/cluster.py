"""The cluster as the balancer knows it: its workers, its model, and which workers may take a request."""

from __future__ import annotations

from dataclasses import dataclass

from gllm.balancer.policies import Policy
from gllm.balancer.registry import Registry, Worker, WorkerState, model_alias

# Seconds a client is told to wait when the model it asked for is still loading.
LOADING_RETRY_AFTER = 5


@dataclass(frozen=True, slots=True)
class Unavailable:
    """Why no worker can take a request: an HTTP status, a message and an OpenAI error code."""

    status: int
    message: str
    code: str
    retry_after: int | None = None
    saturated: bool = False  # every suitable worker is at its in-flight cap: waiting may help


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

    def candidates(
        self, model: str | None, exclude: list[Worker], cap: int | None = None
    ) -> list[Worker] | Unavailable:
        """Workers that may take a request for `model` (below `cap` in flight), or why there are none."""
        workers = self.registry.all()
        ready = [w for w in workers if w.routable and w.serves(model) and w not in exclude]
        if ready and cap is not None:
            below = [w for w in ready if w.in_flight < cap]
            if not below:
                return Unavailable(
                    429, f"Every worker is at its limit of {cap} requests", "workers_saturated", 1, True
                )
            ready = below
        if ready:
            return ready
        if not workers:
            return Unavailable(503, "No worker available", "no_worker_available")
        failing = [w for w in workers if w.state_allows and w.serves(model)]
        if failing:  # tried, ejected by health checks, or behind an open breaker
            reasons = "; ".join(f"{w.address}: {w.last_error or 'unavailable'}" for w in failing)
            return Unavailable(502, f"No worker could be reached ({reasons})", "worker_unreachable")
        wanted = model or self.model or "the cluster model"
        if any(w.state is WorkerState.LOADING and w.serves(model) for w in workers):
            return Unavailable(
                503, f"Model {wanted} is still loading; retry shortly", "model_loading", LOADING_RETRY_AFTER
            )
        if model is not None and not any(w.serves(model) for w in workers):
            served = ", ".join(sorted({model_alias(n) for n in self.model_names()})) or "none"
            return Unavailable(
                404,
                f"The model '{model}' does not exist on this cluster (serving: {served})",
                "model_not_found",
            )
        states = ", ".join(sorted({w.state.value for w in workers}))
        return Unavailable(
            503, f"No worker is ready for {wanted} (worker states: {states})", "no_worker_ready"
        )
