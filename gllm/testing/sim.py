"""Simulated engines for tests: fast configs, engines in a thread, the CLI command, metric reading."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

from gllm.sim import BackgroundSimCluster, SimConfig

# Fast but still batched and timed: a step every 2 ms, free prefill, instant load.
FAST: Mapping[str, Any] = MappingProxyType(
    {
        "load_time_s": 0.0,
        "wake_time_s": 0.0,
        "prefill_time_per_token_s": 0.0,
        "decode_base_step_s": 0.002,
        "decode_per_seq_step_s": 0.0,
    }
)

_SAMPLE = re.compile(r"^(?P<name>[^\s{]+)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def fast_config(**overrides: Any) -> SimConfig:
    """A SimConfig for tests: instant load, 2 ms steps, free prefill; `overrides` win."""
    return SimConfig(**{**FAST, **overrides})


@contextmanager
def sim_engines(count: int = 1, **overrides: Any) -> Iterator[BackgroundSimCluster]:
    """`count` loaded engines on free ports in a background thread, stopped on exit."""
    cluster = BackgroundSimCluster([fast_config(**overrides) for _ in range(count)])
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def sim_engine_command(
    port: int, model: str = "sim-model", *extra: str, python: str | None = None
) -> list[str]:
    """argv that serves one simulated engine as its own process (`python -m gllm sim-engine ...`)."""
    return [
        python or sys.executable,
        "-m",
        "gllm",
        "sim-engine",
        "--port",
        str(port),
        "--model",
        model,
        *extra,
    ]


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of metric `name` in a Prometheus text page, with its labels."""
    found: list[tuple[dict[str, str], float]] = []
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match is None or line.startswith("#") or match["name"] != name:
            continue
        found.append((dict(_LABEL.findall(match["labels"] or "")), float(match["value"])))
    return found


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`; KeyError if there is none."""
    matching = [
        value
        for sample_labels, value in metric_samples(text, name)
        if all(sample_labels.get(k) == v for k, v in labels.items())
    ]
    if not matching:
        raise KeyError(f"no sample of {name} with labels {labels}")
    return sum(matching)
