"""The cluster plan: port layout, validation, the children's command lines and environment."""

from __future__ import annotations

import socket
import sys
from typing import Any

import pytest

from gllm.cluster.plan import ClusterPlan, PlanError, busy_ports, connect_host, port_in_use, worker_ports
from gllm.testing.cluster import free_worker_base


def make_plan(**overrides: Any) -> ClusterPlan:
    """A valid plan of two workers; `overrides` replace fields."""
    settings: dict[str, Any] = {
        "port": 5333,
        "ip": "0.0.0.0",
        "worker_port_start": 8000,
        "worker_gpus": [(0,), (1,)],
        "engine": "sim",
    }
    return ClusterPlan(**{**settings, **overrides})


def value(argv: list[str], flag: str) -> str:
    """The value following `flag` in `argv`."""
    return argv[argv.index(flag) + 1]


@pytest.mark.unit
class TestPortLayout:
    """Worker i on start + 100*i, its engine on that + 10."""

    def test_layout(self) -> None:
        """The documented example: 8000/8010, 8100/8110, 8200/8210, 8300/8310."""
        assert worker_ports(8000, 4) == [(8000, 8010), (8100, 8110), (8200, 8210), (8300, 8310)]

    def test_slots(self) -> None:
        """Slots carry index, GPUs and both ports."""
        slots = make_plan(worker_gpus=[(0, 1), (2, 3)]).workers
        assert [(s.index, s.gpus, s.port, s.engine_port) for s in slots] == [
            (0, (0, 1), 8000, 8010),
            (1, (2, 3), 8100, 8110),
        ]
        assert slots[0].gpu_list == "0,1"
        assert slots[1].name == "worker 1"

    def test_last_possible_layout_is_accepted(self) -> None:
        """The last engine port may be 65535 exactly."""
        plan = make_plan(worker_port_start=65425, port=5333)
        assert plan.workers[-1].engine_port == 65535

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"port": 0}, "--port 0 is out of range"),
            ({"port": 65536}, "out of range"),
            ({"worker_port_start": 0}, "must be at least 1"),
            ({"worker_port_start": 65426}, "beyond 65535"),
            ({"port": 8100}, "also the port of worker 1"),
            ({"port": 8010}, "also the engine port of worker 0"),
            ({"worker_gpus": []}, "at least one worker"),
        ],
    )
    def test_invalid_layouts(self, overrides: dict[str, Any], message: str) -> None:
        """Ports out of range or colliding with the balancer are PlanErrors."""
        with pytest.raises(PlanError, match=message):
            make_plan(**overrides)


@pytest.mark.unit
class TestCommands:
    """The balancer's and the workers' command lines."""

    def test_balancer_first_start(self) -> None:
        """The balancer gets port, address and --load-model so that registering workers get the model."""
        argv = make_plan(load_model="m", policy="least_busy").balancer_argv(model="m")
        assert argv[:4] == [sys.executable, "-m", "gllm", "start-balancer"]
        assert (value(argv, "--port"), value(argv, "--ip"), value(argv, "--load-model")) == (
            "5333",
            "0.0.0.0",
            "m",
        )
        assert value(argv, "--policy") == "least_busy"
        assert "--existing-workers" not in argv

    def test_balancer_restart_knows_the_workers(self) -> None:
        """A restarted balancer gets every worker; without a model, no --load-model."""
        argv = make_plan().balancer_argv(model=None, existing_workers=["http://127.0.0.1:8000", "http://x:1"])
        assert argv[argv.index("--existing-workers") + 1 :] == ["http://127.0.0.1:8000", "http://x:1"]
        assert "--load-model" not in argv

    def test_worker(self) -> None:
        """A worker gets its port, engine, engine port, GPUs, the balancer URL and its own address."""
        plan = make_plan(worker_gpus=[(0, 1), (2, 3)], engine_cmd="run {model}")
        argv = plan.worker_argv(plan.workers[1])
        assert argv[:4] == [sys.executable, "-m", "gllm", "start-worker"]
        assert value(argv, "--port") == "8100"
        assert value(argv, "--engine-port") == "8110"
        assert value(argv, "--gpus") == "2,3"
        assert value(argv, "--engine") == "sim"
        assert value(argv, "--engine-cmd") == "run {model}"
        assert value(argv, "--balancer") == "http://127.0.0.1:5333"
        assert value(argv, "--advertise-address") == "http://127.0.0.1:8100"
        assert value(argv, "--ip") == "127.0.0.1"

    def test_admin_key_travels_in_the_environment_only(self) -> None:
        """The admin key is in the children's environment, never on a command line (ps shows those)."""
        plan = make_plan(admin_key="s3cret")
        assert "s3cret" not in plan.balancer_argv(model=None) + plan.worker_argv(plan.workers[0])
        assert plan.child_env({"A": "1"}) == {"A": "1", "GLLM_ADMIN_KEY": "s3cret"}
        assert make_plan().child_env({"A": "1"}) == {"A": "1"}

    @pytest.mark.parametrize(
        ("ip", "host"),
        [
            ("0.0.0.0", "127.0.0.1"),
            ("", "127.0.0.1"),
            ("::", "[::1]"),
            ("10.1.2.3", "10.1.2.3"),
            ("::1", "[::1]"),
        ],
    )
    def test_connect_host(self, ip: str, host: str) -> None:
        """A wildcard bind is reached on loopback; IPv6 literals get brackets."""
        assert connect_host(ip) == host

    def test_balancer_url_follows_a_specific_ip(self) -> None:
        """Workers register with the address the balancer actually binds."""
        assert make_plan(ip="127.0.0.2").balancer_url == "http://127.0.0.2:5333"


@pytest.mark.unit
class TestPortCheck:
    """Ports taken before the start are found."""

    def test_listening_port_is_in_use(self) -> None:
        """A listening socket makes its port busy; the plan names what wanted it."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            port = sock.getsockname()[1]
            assert port_in_use("127.0.0.1", port)
            plan = make_plan(ip="127.0.0.1", port=port, worker_port_start=free_worker_base(2))
            assert busy_ports(plan) == [f"the balancer: 127.0.0.1:{port}"]
        assert not port_in_use("127.0.0.1", port)
