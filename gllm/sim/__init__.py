"""A simulated vLLM engine for CPU-only tests, demos and benchmarks (see docs/sim.md)."""

from gllm.sim.cluster import BackgroundSimCluster, EngineHandle, SimCluster, new_event_loop, start_engines
from gllm.sim.config import SimConfig
from gllm.sim.engine import EngineState, SimEngine
from gllm.sim.server import EngineServer, create_app

__all__ = [
    "BackgroundSimCluster",
    "EngineHandle",
    "EngineServer",
    "EngineState",
    "SimCluster",
    "SimConfig",
    "SimEngine",
    "create_app",
    "new_event_loop",
    "start_engines",
]
