"""Errors raised by the GLLM client.

GLLMError
 ├── RemoteError           the server answered with an error status (carries status_code and message)
 ├── GLLMConnectionError   the server could not be reached (also a builtin ConnectionError)
 ├── GLLMTimeoutError      a call ran out of time (also a builtin TimeoutError)
 └── ModelLoadError        wait_for_model saw a worker fail to load the model
"""

from __future__ import annotations


class GLLMError(Exception):
    """Base class of every error the GLLM client raises."""


class RemoteError(GLLMError):
    """The server answered with an error status; `status_code` and `message` say what it said."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        error_type: str | None = None,
        code: str | int | None = None,
        body: str = "",
        retry_after: float | None = None,
        method: str = "",
        url: str = "",
    ) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.error_type = error_type
        self.code = code
        self.body = body
        self.retry_after = retry_after
        self.method = method
        self.url = url

    def __repr__(self) -> str:
        return f"RemoteError(status_code={self.status_code!r}, message={self.message!r}, code={self.code!r})"


class GLLMConnectionError(GLLMError, ConnectionError):
    """The server could not be reached, or dropped the connection, after every retry."""


class GLLMTimeoutError(GLLMError, TimeoutError):
    """A call, or a wait, did not finish within its timeout."""


class ModelLoadError(GLLMError):
    """At least one worker reported `failed` while loading the model; `failures` maps address to error."""

    def __init__(self, model: str, failures: dict[str, str]) -> None:
        detail = "; ".join(f"{address}: {error or 'no detail'}" for address, error in failures.items())
        super().__init__(f"model {model!r} failed to load on {len(failures)} worker(s): {detail}")
        self.model = model
        self.failures = failures
