"""What a cluster is made of: the balancer, the workers, their ports and GPUs, and the command of each.

Port layout: worker i listens on `worker_port_start + 100 * i` and its engine on that port + 10 (as the old
GLLM did), so worker 0 of `--worker-port-range-start 8000` is on 8000 with its engine on 8010, worker 1 on 8100
and 8110, and so on. The balancer port must not collide with any of them.
"""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

WORKER_PORT_STEP = 100
ENGINE_PORT_OFFSET = 10
MAX_PORT = 65535
WILDCARDS = ("", "0.0.0.0", "::")
ADMIN_KEY_ENV = "GLLM_ADMIN_KEY"  # read by both start-balancer and start-worker


class PlanError(ValueError):
    """A cluster that cannot be laid out (ports out of range or colliding)."""


def connect_host(ip: str) -> str:
    """The host part of a URL that reaches a server bound to `ip` from this machine."""
    if ip in ("", "0.0.0.0"):
        return "127.0.0.1"
    if ip == "::":
        return "[::1]"
    return f"[{ip}]" if ":" in ip else ip


@dataclass(frozen=True)
class WorkerSlot:
    """One worker of the cluster: its index, GPUs and ports."""

    index: int
    gpus: tuple[int, ...]
    port: int
    engine_port: int

    @property
    def name(self) -> str:
        """Name used in logs and reports."""
        return f"worker {self.index}"

    @property
    def gpu_list(self) -> str:
        """GPU ids as a comma list (CUDA_VISIBLE_DEVICES form)."""
        return ",".join(str(gpu) for gpu in self.gpus)


def worker_ports(start: int, count: int) -> list[tuple[int, int]]:
    """(worker port, engine port) of each of `count` workers from `start`."""
    return [
        (start + WORKER_PORT_STEP * i, start + WORKER_PORT_STEP * i + ENGINE_PORT_OFFSET)
        for i in range(count)
    ]


@dataclass(frozen=True)
class ClusterPlan:
    """Everything needed to start the cluster's processes; validated on construction."""

    port: int
    ip: str
    worker_port_start: int
    worker_gpus: Sequence[tuple[int, ...]]
    engine: str = "vllm"
    engine_cmd: str | None = None
    worker_ip: str = "127.0.0.1"
    load_model: str | None = None
    admin_key: str | None = None
    policy: str | None = None
    log_level: str = "info"
    worker_stop_grace: float = 15.0
    python: str = field(default=sys.executable)

    def __post_init__(self) -> None:
        if not self.worker_gpus:
            raise PlanError("a cluster needs at least one worker")
        if not 1 <= self.port <= MAX_PORT:
            raise PlanError(f"--port {self.port} is out of range (1-{MAX_PORT})")
        if self.worker_port_start < 1:
            raise PlanError(f"--worker-port-range-start {self.worker_port_start} must be at least 1")
        last_worker, last_engine = worker_ports(self.worker_port_start, len(self.worker_gpus))[-1]
        if last_engine > MAX_PORT:
            raise PlanError(
                f"{len(self.worker_gpus)} workers from port {self.worker_port_start} need ports up to "
                f"{last_engine} (worker {last_worker} + {ENGINE_PORT_OFFSET}), beyond {MAX_PORT}: "
                "lower --worker-port-range-start"
            )
        for slot in self.workers:
            if self.port in (slot.port, slot.engine_port):
                kind = "port" if self.port == slot.port else "engine port"
                raise PlanError(f"balancer --port {self.port} is also the {kind} of {slot.name}")

    @property
    def workers(self) -> list[WorkerSlot]:
        """The worker slots, in index order."""
        ports = worker_ports(self.worker_port_start, len(self.worker_gpus))
        return [
            WorkerSlot(index=i, gpus=tuple(gpus), port=port, engine_port=engine_port)
            for i, (gpus, (port, engine_port)) in enumerate(zip(self.worker_gpus, ports, strict=True))
        ]

    @property
    def balancer_url(self) -> str:
        """Where this machine reaches the balancer (what workers register with)."""
        return f"http://{connect_host(self.ip)}:{self.port}"

    def worker_url(self, slot: WorkerSlot) -> str:
        """The address the balancer uses for a worker (given to it as --advertise-address)."""
        return f"http://{connect_host(self.worker_ip)}:{slot.port}"

    def balancer_argv(self, *, model: str | None, existing_workers: Sequence[str] = ()) -> list[str]:
        """Command line of the balancer; `model` becomes --load-model, `existing_workers` --existing-workers."""
        argv = [self.python, "-m", "gllm", "start-balancer", "--port", str(self.port), "--ip", self.ip]
        argv += ["--log-level", self.log_level]
        if model:
            argv += ["--load-model", model]
        if self.policy:
            argv += ["--policy", self.policy]
        if existing_workers:
            argv += ["--existing-workers", *existing_workers]
        return argv

    def worker_argv(self, slot: WorkerSlot) -> list[str]:
        """Command line of one worker: it registers with the balancer and loads the model the reply names."""
        argv = [self.python, "-m", "gllm", "start-worker", "--port", str(slot.port), "--ip", self.worker_ip]
        argv += ["--engine", self.engine, "--engine-port", str(slot.engine_port), "--gpus", slot.gpu_list]
        argv += ["--balancer", self.balancer_url, "--advertise-address", self.worker_url(slot)]
        argv += ["--stop-grace", f"{self.worker_stop_grace:g}", "--log-level", self.log_level.upper()]
        if self.engine_cmd:
            argv += ["--engine-cmd", self.engine_cmd]
        return argv

    def child_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """Environment of the children: the admin key travels in GLLM_ADMIN_KEY, never on a command line."""
        env = dict(base)
        if self.admin_key:
            env[ADMIN_KEY_ENV] = self.admin_key
        return env

    def bindings(self) -> list[tuple[str, str, int]]:
        """(what, host, port) of every socket the cluster will listen on."""
        found = [("the balancer", self.ip, self.port)]
        for slot in self.workers:
            found.append((slot.name, self.worker_ip, slot.port))
            found.append((f"the engine of {slot.name}", "127.0.0.1", slot.engine_port))
        return found


def port_in_use(host: str, port: int) -> bool:
    """Whether binding (host, port) fails because something listens there (other errors: False)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as the servers set it: a port in TIME_WAIT is usable, a listening one is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def busy_ports(plan: ClusterPlan) -> list[str]:
    """A readable line for each port of the plan that is already taken."""
    return [
        f"{what}: {host or '*'}:{port}" for what, host, port in plan.bindings() if port_in_use(host, port)
    ]
