"""GLLM: one OpenAI-compatible endpoint in front of many LLM inference workers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# The client is imported on first use, so the balancer, workers and `gllm --version` do not pay for httpx.
_CLIENT_NAMES = (
    "AsyncGLLM",
    "GLLM",
    "GLLMConnectionError",
    "GLLMError",
    "GLLMTimeoutError",
    "ModelLoadError",
    "RemoteError",
    "WorkerStatus",
)

__all__ = [*_CLIENT_NAMES, "__version__"]

if TYPE_CHECKING:
    from gllm.client import (  # noqa: F401  (re-exported lazily by __getattr__)
        GLLM,
        AsyncGLLM,
        GLLMConnectionError,
        GLLMError,
        GLLMTimeoutError,
        ModelLoadError,
        RemoteError,
        WorkerStatus,
    )


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        import gllm.client

        return getattr(gllm.client, name)
    raise AttributeError(f"module 'gllm' has no attribute {name!r}")
