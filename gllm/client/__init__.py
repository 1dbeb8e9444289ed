"""The GLLM Python client: GLLM (blocking) and AsyncGLLM (asyncio) talk to a GLLM balancer."""

from gllm.client._workers import WorkerStatus, model_matches
from gllm.client.async_client import AsyncGLLM
from gllm.client.errors import (
    GLLMConnectionError,
    GLLMError,
    GLLMTimeoutError,
    ModelLoadError,
    RemoteError,
)
from gllm.client.sync_client import GLLM

__all__ = [
    "GLLM",
    "AsyncGLLM",
    "GLLMConnectionError",
    "GLLMError",
    "GLLMTimeoutError",
    "ModelLoadError",
    "RemoteError",
    "WorkerStatus",
    "model_matches",
]
