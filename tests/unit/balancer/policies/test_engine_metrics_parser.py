"""Reading engine load figures from Prometheus text: the sim's own page, vLLM, SGLang and llama.cpp pages."""

from __future__ import annotations

import pytest

from gllm.balancer.engine_load import EngineFigures
from gllm.balancer.engine_metrics import parse_engine_figures
from gllm.sim.metrics import EngineMetrics, Gauges

VLLM_PAGE = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B"} 12.0
vllm:num_requests_running{engine="1",model_name="meta-llama/Llama-3.1-8B"} 3.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B"} 4.0 1712345678000
vllm:num_requests_waiting{engine="1",model_name="meta-llama/Llama-3.1-8B"} 0.0
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B"} 0.42
vllm:kv_cache_usage_perc{engine="1",model_name="meta-llama/Llama-3.1-8B"} 0.17
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} 7.0
python_gc_objects_collected_total{generation="0"} 1234.0
"""

SGLANG_PAGE = """\
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{model_name="qwen",tp_rank="0"} 9.0
sglang:num_queue_reqs{model_name="qwen",tp_rank="0"} 2.0
sglang:token_usage{model_name="qwen",tp_rank="0"} 0.33
sglang:cache_hit_rate{model_name="qwen",tp_rank="0"} 0.8
"""

LLAMACPP_PAGE = """\
llamacpp:requests_processing 2
llamacpp:requests_deferred 1
llamacpp:kv_cache_usage_ratio 0.25
"""


@pytest.mark.unit
class TestParseEngineFigures:
    """Running, waiting and KV use from several engines' pages."""

    def test_sim_page(self) -> None:
        """The simulated engine's real /metrics renderer (vLLM names, a model_name label)."""
        page = EngineMetrics('sim-model "quoted"').render(Gauges(running=5, waiting=7, kv_cache_usage=0.625))
        assert parse_engine_figures(page) == EngineFigures(5.0, 7.0, 0.625)

    def test_vllm_page_sums_ranks_and_skips_timestamps(self) -> None:
        """Counts summed over data-parallel engines, KV use is the highest, a timestamp is not the value."""
        assert parse_engine_figures(VLLM_PAGE) == EngineFigures(15.0, 4.0, 0.42)

    def test_sglang_page(self) -> None:
        """SGLang's names."""
        assert parse_engine_figures(SGLANG_PAGE) == EngineFigures(9.0, 2.0, 0.33)

    def test_llamacpp_page(self) -> None:
        """llama.cpp's names (no labels)."""
        assert parse_engine_figures(LLAMACPP_PAGE) == EngineFigures(2.0, 1.0, 0.25)

    def test_older_vllm_kv_name(self) -> None:
        """gpu_cache_usage_perc is read when kv_cache_usage_perc is absent."""
        page = "vllm:num_requests_running 1\nvllm:gpu_cache_usage_perc 0.5\n"
        assert parse_engine_figures(page) == EngineFigures(1.0, 0.0, 0.5)

    @pytest.mark.parametrize(
        "page",
        [
            "",
            "# only comments\n",
            "python_gc_objects_collected_total 3\n",
            "vllm:kv_cache_usage_perc 0.3\n",  # no running/waiting: not a load page
            "<html>not metrics</html>",
        ],
    )
    def test_no_figures(self, page: str) -> None:
        """Pages without load figures give None."""
        assert parse_engine_figures(page) is None

    def test_garbage_lines_are_skipped(self) -> None:
        """Malformed and NaN samples are ignored, the rest still counts."""
        page = 'vllm:num_requests_running\nvllm:num_requests_running{a="1"} x\nvllm:num_requests_waiting NaN\nvllm:num_requests_running 2\n'
        assert parse_engine_figures(page) == EngineFigures(2.0, 0.0, None)
