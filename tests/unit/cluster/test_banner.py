"""The start-up banner: where to send requests, what runs where, and no secrets."""

from __future__ import annotations

from typing import Any

import pytest

from gllm.cluster.banner import banner
from gllm.cluster.plan import ClusterPlan


def make_plan(**overrides: Any) -> ClusterPlan:
    """A two-worker sim plan; `overrides` replace fields."""
    settings: dict[str, Any] = {
        "port": 5333,
        "ip": "0.0.0.0",
        "worker_port_start": 8000,
        "worker_gpus": [(0,), (1,)],
        "engine": "sim",
        "load_model": "demo-model",
    }
    return ClusterPlan(**{**settings, **overrides})


@pytest.mark.unit
class TestBanner:
    """What a user reads once the balancer answers."""

    def test_endpoints(self) -> None:
        """OpenAI base_url, a curl line with the model, and each worker with its ports and GPUs."""
        text = banner(make_plan())
        assert 'base_url="http://127.0.0.1:5333/v1"' in text
        assert "curl http://127.0.0.1:5333/v1/chat/completions" in text
        assert '"model": "demo-model"' in text
        assert "worker 1: http://127.0.0.1:8100 (engine port 8110, labels 1)" in text
        assert "all interfaces" in text
        assert "Ctrl-C" in text

    def test_without_a_model_it_shows_how_to_load_one(self) -> None:
        """No --load-model: a load_model curl line, with the admin key referred to by name only."""
        text = banner(make_plan(load_model=None, admin_key="s3cret", engine="vllm", ip="127.0.0.1"))
        assert "curl -X POST http://127.0.0.1:5333/load_model" in text
        assert "$GLLM_ADMIN_KEY" in text
        assert "s3cret" not in text
        assert "GPUs 0" in text
        assert "all interfaces" not in text
