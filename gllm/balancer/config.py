"""Balancer settings: one validated object built from flags and environment at start."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

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
    check_size: int = DEFAULT_CHECK_SIZE
    admin_key: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    connect_timeout: float = 5.0
    health_timeout: float = 2.0
    request_timeout: float | None = None
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
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name.replace('_', ' ')} must be positive")
        if self.request_timeout is not None and self.request_timeout <= 0:
            raise ValueError("request timeout must be positive (or unset for no limit)")

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
