"""What GLLM and AsyncGLLM share: settings, retry decisions per request and the default model, without I/O."""

from __future__ import annotations

import random
from collections.abc import Mapping

import httpx

from gllm.client._protocol import ClientSettings, RequestSpec, normalize_address, transport_error
from gllm.client._retry import RetryPolicy, delay_after_error, delay_after_status
from gllm.client.errors import RemoteError

# Connections kept open to the balancer; generous because one client may drive many concurrent streams.
CONNECTION_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64)


class ClientBase:
    """Configuration and per-request decisions common to the sync and async clients."""

    def __init__(
        self,
        server_address: str,
        api_key: str | None = None,
        *,
        timeout: float | None = 600.0,
        connect_timeout: float = 5.0,
        control_timeout: float = 30.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = ClientSettings(
            base_url=normalize_address(server_address),
            api_key=api_key,
            timeout=timeout,
            connect_timeout=connect_timeout,
            control_timeout=control_timeout,
            retry=RetryPolicy(max_retries=max_retries, backoff_base=backoff_base, backoff_max=backoff_max),
            headers=dict(headers or {}),
        )
        self._rng = random.Random()
        self._default_model: str | None = None  # from load_model, or the first model GET /models listed

    @property
    def server_address(self) -> str:
        """The balancer's base URL."""
        return self.settings.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.server_address!r})"

    def _url(self, spec: RequestSpec) -> str:
        return self.settings.base_url + spec.path

    def _headers(self, spec: RequestSpec) -> dict[str, str]:
        return {**self.settings.base_headers(), **spec.headers()}

    def _delay_after_error(self, spec: RequestSpec, attempt: int, exc: httpx.TransportError) -> float:
        """Seconds to wait before retrying after `exc`; raises the client error when it must not be retried."""
        delay = delay_after_error(self.settings.retry, attempt, exc, self._rng) if spec.retry else None
        if delay is None:
            raise transport_error(exc, spec, self.settings.base_url) from exc
        return delay

    def _delay_after_status(self, spec: RequestSpec, attempt: int, error: RemoteError) -> float:
        """Seconds to wait before retrying an error response; raises `error` when it must not be retried."""
        policy = self.settings.retry
        delay = (
            delay_after_status(policy, attempt, error.status_code, error.retry_after, self._rng)
            if spec.retry
            else None
        )
        if delay is None:
            if error.status_code == 404:
                self._default_model = None  # the model may have been swapped by someone else: look again
            raise error
        return delay

    def _cached_model(self, model: str | None) -> str | None:
        """The model to use if known without asking the server."""
        return model or self._default_model

    def _remember_model(self, model: str) -> str:
        self._default_model = model
        return model

    def _model_to_wait_for(self, model: str | None) -> str:
        chosen = model or self._default_model
        if not chosen:
            raise ValueError("name the model to wait for (or call load_model first)")
        return chosen
