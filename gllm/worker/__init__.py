"""The GLLM worker agent: serves the worker protocol and supervises one engine process."""

from gllm.worker.config import WorkerConfig
from gllm.worker.engines import PRESETS, EngineLaunch, EnginePreset, EngineSpec, parallel_plan
from gllm.worker.server import RunningWorker, start_worker
from gllm.worker.state import WorkerState, WorkerStatus
from gllm.worker.supervisor import EngineSupervisor, SupervisorConfig

__all__ = [
    "PRESETS",
    "EngineLaunch",
    "EnginePreset",
    "EngineSpec",
    "EngineSupervisor",
    "RunningWorker",
    "SupervisorConfig",
    "WorkerConfig",
    "WorkerState",
    "WorkerStatus",
    "parallel_plan",
    "start_worker",
]
