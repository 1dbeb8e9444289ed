"""SimConfig validation and the Prometheus page."""

from __future__ import annotations

import pytest

from gllm.sim.config import SimConfig
from gllm.sim.metrics import EngineMetrics, Gauges, Histogram
from gllm.testing.sim import metric_samples, metric_value


@pytest.mark.unit
class TestSimConfig:
    """Parameters are checked once, at construction."""

    def test_defaults_are_valid(self) -> None:
        """The default config builds and serves its model under its own name."""
        config = SimConfig()
        assert config.name == "sim-model"
        assert SimConfig(model="org/x", served_model_name=("x",)).name == "x"

    def test_served_names(self) -> None:
        """Several served names: the first is the main one, duplicates go, no name means the model."""
        config = SimConfig(model="org/x", served_model_name=("org/x", "x", "org/x"))
        assert config.served_model_name == ("org/x", "x")
        assert (config.name, config.names) == ("org/x", ("org/x", "x"))
        assert SimConfig(model="org/x").names == ("org/x",)

    def test_a_lone_string_is_one_name(self) -> None:
        """A plain string (the older form) is one name, not a tuple of characters."""
        assert SimConfig(served_model_name="abc").names == ("abc",)  # type: ignore[arg-type]

    def test_speed_scales_durations(self) -> None:
        """speed 4 makes every duration four times shorter."""
        assert SimConfig(speed=4.0).scaled(1.0) == 0.25

    @pytest.mark.parametrize(
        "changes",
        [
            {"speed": 0},
            {"load_time_s": -1},
            {"max_num_seqs": 0},
            {"block_size": 0},
            {"eos_probability": 2},
            {"max_model_len": 10_000, "num_blocks": 10, "block_size": 16},
            {"port": 70000},
            {"model": ""},
            {"served_model_name": ("a", "")},
        ],
    )
    def test_invalid(self, changes: dict[str, object]) -> None:
        """Each invalid value is reported."""
        with pytest.raises(ValueError, match="invalid SimConfig"):
            SimConfig().replace(**changes)


@pytest.mark.unit
class TestMetricsPage:
    """vLLM's names, the model_name label and cumulative histograms."""

    def test_names_and_values(self) -> None:
        """Gauges and counters appear with their values."""
        metrics = EngineMetrics("m")
        metrics.record_admission(100, 64)
        metrics.generation_tokens = 7
        page = metrics.render(Gauges(running=3, waiting=2, kv_cache_usage=0.5))
        assert metric_value(page, "vllm:num_requests_running", model_name="m") == 3
        assert metric_value(page, "vllm:num_requests_waiting") == 2
        assert metric_value(page, "vllm:kv_cache_usage_perc") == 0.5
        assert metric_value(page, "vllm:prefix_cache_queries_total") == 100
        assert metric_value(page, "vllm:prefix_cache_hits_total") == 64
        assert metric_value(page, "vllm:generation_tokens_total") == 7
        assert "# TYPE vllm:time_to_first_token_seconds histogram" in page
        assert "# TYPE vllm:e2e_request_latency_seconds histogram" in page

    def test_histogram_is_cumulative(self) -> None:
        """Buckets count observations at or below their bound."""
        histogram = Histogram((0.1, 1.0))
        for value in (0.05, 0.1, 0.5, 3.0):
            histogram.observe(value)
        lines = histogram.lines("h", 'model_name="m"')
        assert lines[:3] == [
            'h_bucket{model_name="m",le="0.1"} 2',
            'h_bucket{model_name="m",le="1.0"} 3',
            'h_bucket{model_name="m",le="+Inf"} 4',
        ]
        assert lines[4] == 'h_count{model_name="m"} 4'

    def test_finish_reasons_and_escaping(self) -> None:
        """request_success_total is labelled by reason; label values are escaped."""
        metrics = EngineMetrics('a"b')
        metrics.record_finish("length", 1.0)
        metrics.record_finish("abort", 1.0)
        page = metrics.render(Gauges(0, 0, 0.0))
        assert 'model_name="a\\"b"' in page
        assert metric_value(page, "vllm:request_success_total", finished_reason="length") == 1
        assert metrics.e2e.count == 1  # aborted requests are not latency samples
        assert len(metric_samples(page, "vllm:request_success_total")) == 3
