"""Engine metrics in Prometheus text format, under vLLM's metric names and `model_name` label."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

# vLLM's bucket boundaries for these histograms.
TTFT_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
E2E_BUCKETS: tuple[float, ...] = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
FINISH_REASONS: tuple[str, ...] = ("stop", "length", "abort")
# Plain samples: name -> (type, help).
SAMPLES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "vllm:num_requests_running": ("gauge", "Number of requests in model execution batches."),
        "vllm:num_requests_waiting": ("gauge", "Number of requests waiting to be processed."),
        "vllm:kv_cache_usage_perc": ("gauge", "KV-cache usage. 1 means 100 percent usage."),
        "vllm:gpu_cache_usage_perc": ("gauge", "GPU KV-cache usage (older name of kv_cache_usage_perc)."),
        "vllm:prefix_cache_queries_total": (
            "counter",
            "Prefix cache queries, in terms of number of queried tokens.",
        ),
        "vllm:prefix_cache_hits_total": (
            "counter",
            "Prefix cache hits, in terms of number of cached tokens.",
        ),
        "vllm:prompt_tokens_total": ("counter", "Number of prefill tokens processed."),
        "vllm:generation_tokens_total": ("counter", "Number of generation tokens processed."),
        "vllm:num_preemptions_total": ("counter", "Cumulative number of preemption from the engine."),
    }
)


class Histogram:
    """A cumulative Prometheus histogram."""

    __slots__ = ("_counts", "bounds", "count", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self._counts = [0] * (len(self.bounds) + 1)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Record one observation."""
        self._counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value

    def lines(self, name: str, labels: str) -> list[str]:
        """Exposition lines: cumulative buckets, +Inf, sum and count."""
        out: list[str] = []
        cumulative = 0
        for bound, count in zip(self.bounds, self._counts, strict=False):
            cumulative += count
            out.append(f'{name}_bucket{{{labels},le="{bound}"}} {cumulative}')
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.count}')
        out.append(f"{name}_sum{{{labels}}} {self.total!r}")
        out.append(f"{name}_count{{{labels}}} {self.count}")
        return out


@dataclass(slots=True)
class Gauges:
    """The instantaneous state reported with each scrape."""

    running: int
    waiting: int
    kv_cache_usage: float


class EngineMetrics:
    """Counters and histograms of one engine."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.prefix_cache_queries = 0
        self.prefix_cache_hits = 0
        self.preemptions = 0
        self.finished: dict[str, int] = dict.fromkeys(FINISH_REASONS, 0)
        self.ttft = Histogram(TTFT_BUCKETS)
        self.e2e = Histogram(E2E_BUCKETS)

    def record_admission(self, prompt_tokens: int, cached_tokens: int) -> None:
        """A sequence entered the batch: count prefix cache queries and hits in tokens."""
        self.prefix_cache_queries += prompt_tokens
        self.prefix_cache_hits += cached_tokens

    def record_finish(self, reason: str, e2e_seconds: float) -> None:
        """A sequence finished (or was aborted)."""
        self.finished[reason] = self.finished.get(reason, 0) + 1
        if reason != "abort":
            self.e2e.observe(e2e_seconds)

    def render(self, gauges: Gauges) -> str:
        """The whole /metrics page."""
        labels = f'model_name="{_escape(self.model_name)}"'
        out: list[str] = []
        values: dict[str, float] = {
            "vllm:num_requests_running": gauges.running,
            "vllm:num_requests_waiting": gauges.waiting,
            "vllm:kv_cache_usage_perc": gauges.kv_cache_usage,
            "vllm:gpu_cache_usage_perc": gauges.kv_cache_usage,
            "vllm:prefix_cache_queries_total": self.prefix_cache_queries,
            "vllm:prefix_cache_hits_total": self.prefix_cache_hits,
            "vllm:prompt_tokens_total": self.prompt_tokens,
            "vllm:generation_tokens_total": self.generation_tokens,
            "vllm:num_preemptions_total": self.preemptions,
        }
        for name, (kind, help_text) in SAMPLES.items():
            out.extend(
                (
                    f"# HELP {name} {help_text}",
                    f"# TYPE {name} {kind}",
                    f"{name}{{{labels}}} {values[name]!r}",
                )
            )
        out.append("# HELP vllm:request_success_total Count of successfully processed requests.")
        out.append("# TYPE vllm:request_success_total counter")
        for reason, count in self.finished.items():
            out.append(f'vllm:request_success_total{{finished_reason="{reason}",{labels}}} {count}')
        for name, histogram, help_text in (
            ("vllm:time_to_first_token_seconds", self.ttft, "Histogram of time to first token in seconds."),
            ("vllm:e2e_request_latency_seconds", self.e2e, "Histogram of e2e request latency in seconds."),
        ):
            out.extend((f"# HELP {name} {help_text}", f"# TYPE {name} histogram"))
            out.extend(histogram.lines(name, labels))
        return "\n".join(out) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
