"""Registration with a balancer: POST /add_worker until it answers, then again every interval.

The balancer answers with the cluster's model (plain text, empty for none). The worker loads it when the
answer is news: on the first registration, or when the balancer names another model than last time (for
example a balancer restarted with a new --load-model). An unchanged answer never reloads, so a worker whose
GPUs were released on purpose stays released, and a model that failed to load is not retried in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

logger = logging.getLogger("gllm.worker")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: attempt n waits min(cap, initial * 2**n) times a factor in [0.5, 1]."""

    initial: float = 0.5
    cap: float = 15.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        base = min(self.cap, self.initial * 2.0 ** min(attempt, 32))
        factor = random.uniform(0.5, 1.0) if rng is None else rng.uniform(0.5, 1.0)
        return base * factor


def parse_model_reply(text: str) -> str:
    """The model named by an /add_worker reply: plain text, tolerating a JSON string; "" for none."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        with contextlib.suppress(ValueError):
            decoded = json.loads(text)
            if isinstance(decoded, str):
                return decoded.strip()
    return text


def local_address_towards(url: str) -> str:
    """The local IP this machine uses to reach `url`'s host (blocking DNS: call in a thread)."""
    host = urlsplit(url).hostname or "127.0.0.1"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((host, 9))  # UDP connect sends nothing; it only picks the route
            return str(sock.getsockname()[0])
    except OSError:
        return socket.gethostname()


async def advertised_address(host: str, port: int, balancer: str, given: str | None) -> str:
    """The URL the balancer should use for this worker."""
    if given:
        return given
    if host not in ("", "0.0.0.0", "::"):
        return f"http://{host}:{port}"
    ip = await asyncio.to_thread(local_address_towards, balancer)
    return f"http://{ip}:{port}"


class Registrar:
    """Keeps this worker registered with one balancer; runs as a background task, never blocks serving."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        balancer: str,
        address: str,
        on_model: Callable[[str], object],
        *,
        interval: float = 30.0,
        backoff: Backoff | None = None,
        timeout: float = 5.0,
        admin_key: str | None = None,
    ) -> None:
        self._session = session
        self._balancer = balancer.rstrip("/")
        self.address = address
        self._on_model = on_model
        self._interval = interval
        self._backoff = backoff or Backoff()
        self._timeout = timeout
        self._headers = {"Authorization": f"Bearer {admin_key}"} if admin_key else {}
        self._acted_model: str | None = None
        self.registrations = 0
        self.last_registered_at: float | None = None
        self.last_error: str | None = None

    def info(self) -> dict[str, object]:
        """Registration facts for GET /status."""
        return {
            "url": self._balancer,
            "address": self.address,
            "registrations": self.registrations,
            "last_registered_at": self.last_registered_at,
            "last_error": self.last_error,
        }

    async def run(self) -> None:
        """Register now, retrying with backoff until it works; then re-register every interval, forever."""
        while True:
            try:
                await self.register_until_accepted()
            except Exception:  # a bug must not end registration for the life of the worker
                logger.exception("registration with %s failed", self._balancer)
            await asyncio.sleep(self._interval)

    async def register_until_accepted(self) -> str:
        """Retry /add_worker with backoff until the balancer answers 200; returns the model it named."""
        attempt = 0
        while True:
            model = await self.register_once()
            if model is not None:
                return model
            await asyncio.sleep(self._backoff.delay(attempt))
            attempt += 1

    async def register_once(self) -> str | None:
        """One /add_worker call; the model named in the reply, or None when it did not succeed."""
        url = f"{self._balancer}/add_worker"
        try:
            async with self._session.post(
                url,
                json={"address": self.address},
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as resp:
                text = await resp.text(errors="replace")
                if resp.status != 200:
                    self._note_error(f"{url} answered {resp.status}: {text[:200]}")
                    return None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._note_error(f"{url} unreachable: {exc!r}")
            return None
        model = parse_model_reply(text)
        if self.registrations == 0 or self.last_error is not None:
            logger.info(
                "registered with %s as %s (cluster model: %s)", self._balancer, self.address, model or "-"
            )
        self.registrations += 1
        self.last_registered_at = time.time()
        self.last_error = None
        if model and model != self._acted_model:
            self._on_model(model)
        self._acted_model = model
        return model

    def _note_error(self, error: str) -> None:
        if error != self.last_error:
            logger.warning("registration failed: %s (retrying)", error)
        self.last_error = error
