"""Per-policy options: `key=value` strings (from `--policy-option`), read with types and bounds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class PolicyOptions:
    """String options read by a policy's factory; what no factory read is reported as unknown."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = {key.strip().replace("-", "_"): value.strip() for key, value in (values or {}).items()}
        self._read: set[str] = set()

    @classmethod
    def parse(cls, items: Iterable[str]) -> PolicyOptions:
        """Options from `key=value` strings; ValueError names a malformed one."""
        values: dict[str, str] = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"policy option {item!r} is not of the form key=value")
            values[key] = value
        return cls(values)

    def __bool__(self) -> bool:
        return bool(self._values)

    def as_dict(self) -> dict[str, str]:
        """Every option as given (keys normalized to snake_case)."""
        return dict(self._values)

    def unread(self) -> list[str]:
        """Options that nothing asked for: misspelt, or meant for another policy."""
        return sorted(set(self._values) - self._read)

    def known(self) -> list[str]:
        """Every option name a factory asked for (what this policy accepts)."""
        return sorted(self._read)

    def _raw(self, key: str) -> str | None:
        self._read.add(key)
        return self._values.get(key)

    def get_str(self, key: str, default: str) -> str:
        """A text option."""
        raw = self._raw(key)
        return default if raw is None or raw == "" else raw

    def get_list(self, key: str, default: Iterable[str]) -> tuple[str, ...]:
        """A comma-separated list option."""
        raw = self._raw(key)
        if raw is None or raw == "":
            return tuple(default)
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    def get_float(self, key: str, default: float, minimum: float | None = None) -> float:
        """A number option, at least `minimum` when given."""
        raw = self._raw(key)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"policy option {key} must be a number, got {raw!r}") from None
        if value != value or (minimum is not None and value < minimum):  # NaN or below the bound
            raise ValueError(f"policy option {key} must be at least {minimum:g}, got {raw!r}")
        return value

    def get_int(self, key: str, default: int, minimum: int | None = None) -> int:
        """A whole-number option, at least `minimum` when given."""
        raw = self._raw(key)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"policy option {key} must be a whole number, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ValueError(f"policy option {key} must be at least {minimum}, got {raw!r}")
        return value
