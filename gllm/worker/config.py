"""The worker's settings, validated once at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from gllm.worker.engines import DEFAULT_ENGINE, EngineSpec, get_preset
from gllm.worker.supervisor import SupervisorConfig


def check_http_url(url: str, what: str) -> str:
    """Return `url` without a trailing slash if it is an absolute http(s) URL, else raise ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute http(s)://host[:port] URL, got {url!r}")
    return url.rstrip("/")


@dataclass(frozen=True)
class WorkerConfig:
    """Everything `gllm start-worker` is told."""

    host: str = "0.0.0.0"
    port: int = 8000
    engine: str = DEFAULT_ENGINE
    engine_cmd: str | None = None
    engine_port: int | None = None  # default: port + 10
    gpus: tuple[str, ...] = ()
    model: str | None = None
    balancer: str | None = None
    advertise_address: str | None = None
    admin_key: str | None = None  # sent as a Bearer token to the balancer's /add_worker
    register_interval: float = 30.0
    request_timeout: float | None = None  # total seconds per relayed request; None: unlimited
    connect_timeout: float = 10.0
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)

    def __post_init__(self) -> None:
        get_preset(self.engine)  # raises ValueError for an unknown name
        if not 0 <= self.port <= 65535:
            raise ValueError(f"bad port {self.port}")
        port = self.resolved_engine_port
        if not 0 < port <= 65535:
            raise ValueError(f"bad engine port {port} (give --engine-port)")
        if port == self.port:
            raise ValueError("the engine port must differ from the worker port")
        if self.balancer is not None:
            object.__setattr__(self, "balancer", check_http_url(self.balancer, "--balancer"))
        if self.advertise_address is not None:
            object.__setattr__(
                self, "advertise_address", check_http_url(self.advertise_address, "--advertise-address")
            )
        for name in ("register_interval", "connect_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.supervisor.load_timeout <= 0 or self.supervisor.stop_grace < 0:
            raise ValueError("load timeout must be positive and stop grace not negative")

    @property
    def resolved_engine_port(self) -> int:
        """The engine's port: given, or the worker port + 10."""
        return self.engine_port if self.engine_port is not None else self.port + 10

    def engine_spec(self) -> EngineSpec:
        """How this worker starts its engine."""
        return EngineSpec(
            preset=get_preset(self.engine),
            port=self.resolved_engine_port,
            gpus=self.gpus,
            template=self.engine_cmd,
        )
