"""Balancer settings: one validated object built from flags and environment at start."""

from __future__ import annotations

import ipaddress
import os
import random
from dataclasses import dataclass, field

from gllm.balancer.breaker import BreakerSettings
from gllm.balancer.health import HealthSettings
from gllm.balancer.policies import PolicyOptions, make_policy
from gllm.balancer.proxy import ProxySettings
from gllm.balancer.retry import RetrySettings

DEFAULT_CHECK_SIZE = 5
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BalancerConfig:
    """Everything the balancer needs to know; validated in __post_init__."""

    host: str = "0.0.0.0"
    port: int = 5333
    existing_workers: tuple[str, ...] = ()
    load_model: str | None = None
    policy: str = "least_busy"
    policy_options: tuple[str, ...] = ()  # raw KEY=VALUE strings, checked by the policy's factory
    engine_metrics_interval: float = 1.0
    check_size: int = DEFAULT_CHECK_SIZE
    admin_key: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    connect_timeout: float = 5.0
    health_timeout: float = 2.0
    request_timeout: float | None = None
    first_byte_timeout: float | None = 120.0
    idle_timeout: float | None = 120.0
    failover: bool = True
    max_attempts: int = 3
    health_interval: float = 5.0
    unhealthy_threshold: int = 3
    healthy_threshold: int = 2
    breaker_failures: int = 5
    breaker_open_seconds: float = 10.0
    max_in_flight_per_worker: int | None = None
    max_queue: int = 1024
    queue_timeout: float = 30.0
    drain_timeout: float = 30.0
    state_file: str | None = None
    access_log: bool = False
    load_model_timeout: float = 900.0
    release_timeout: float = 300.0
    status_interval: float = 2.0
    status_fast_interval: float = 0.5
    seed: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0-65535, got {self.port}")
        if self.check_size < 1:
            raise ValueError(f"check size must be at least 1, got {self.check_size}")
        if self.max_body_bytes < 1024:
            raise ValueError(f"max body size must be at least 1024 bytes, got {self.max_body_bytes}")
        for name in (
            "connect_timeout",
            "health_timeout",
            "load_model_timeout",
            "release_timeout",
            "status_interval",
            "status_fast_interval",
            "health_interval",
            "breaker_open_seconds",
            "engine_metrics_interval",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name.replace('_', ' ')} must be positive")
        for name in ("request_timeout", "first_byte_timeout", "idle_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name.replace('_', ' ')} must be positive (or unset for no limit)")
        # Build the policy once now so an unknown name or a misspelt option is an error at start.
        make_policy(self.policy, self.check_size, random.Random(0), PolicyOptions.parse(self.policy_options))
        if self.max_in_flight_per_worker is not None and self.max_in_flight_per_worker < 1:
            raise ValueError("max in-flight per worker must be at least 1 (or unset for no cap)")
        if self.max_queue < 0 or self.queue_timeout <= 0 or self.drain_timeout < 0:
            raise ValueError(
                "queue size and drain timeout must not be negative; queue timeout must be positive"
            )

    @property
    def health(self) -> HealthSettings:
        """Active health check settings."""
        return HealthSettings(
            self.health_interval, self.health_timeout, self.unhealthy_threshold, self.healthy_threshold
        )

    @property
    def breaker(self) -> BreakerSettings:
        """Circuit breaker settings of every worker."""
        return BreakerSettings(
            failure_threshold=self.breaker_failures, open_seconds=self.breaker_open_seconds
        )

    @property
    def proxy(self) -> ProxySettings:
        """Timeouts and failover of the data plane."""
        return ProxySettings(self.request_timeout, self.first_byte_timeout, self.idle_timeout, self.failover)

    @property
    def retry(self) -> RetrySettings:
        """Retry budget of one request."""
        return RetrySettings(max_attempts=self.max_attempts)

    @property
    def control_open_to_network(self) -> bool:
        """True when control routes need no key and the balancer listens beyond loopback."""
        if self.admin_key:
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host != "localhost"


def env_check_size(default: int = DEFAULT_CHECK_SIZE) -> int:
    """CHECK_SIZE from the environment (the old balancer's knob), else the default."""
    raw = os.environ.get("CHECK_SIZE", "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"CHECK_SIZE must be a whole number, got {raw!r}") from exc
