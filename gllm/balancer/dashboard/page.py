"""Builds the dashboard once: index.html with charts.js and dashboard.js inlined, and a strict CSP for it.

Inlining makes the page one self-contained response (no asset paths to get right under /dashboard and
/v1/dashboard, nothing fetched from the internet); the Content-Security-Policy allows exactly that script, by
hash, and network access only back to the balancer.
"""

from __future__ import annotations

import base64
import hashlib
from importlib import resources

SCRIPTS = ("charts.js", "dashboard.js")
PLACEHOLDER = "<!-- SCRIPTS -->"
CONTENT_TYPE = b"text/html; charset=utf-8"


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


class DashboardPage:
    """The page's bytes and the headers to send with them."""

    def __init__(self) -> None:
        script = "\n".join(_read(name) for name in SCRIPTS)
        if "</script" in script.lower():
            raise ValueError("dashboard scripts must not contain '</script'")
        html = _read("index.html")
        if PLACEHOLDER not in html:
            raise ValueError(f"index.html lacks the {PLACEHOLDER} placeholder")
        self.body = html.replace(PLACEHOLDER, f"<script>\n{script}\n</script>").encode()
        digest = base64.b64encode(hashlib.sha256(script.join(("\n", "\n")).encode()).digest()).decode()
        policy = (
            f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'"
        )
        self.headers: tuple[tuple[bytes, bytes], ...] = (
            (b"content-security-policy", policy.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"cache-control", b"no-cache"),
        )
