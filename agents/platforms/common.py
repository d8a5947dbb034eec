"""What every platform mapper shares: the result type, the error, and field access that names the path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.errors import AgentError
from schemas import CanonicalEvent, InvalidEvent, validate


class PayloadError(AgentError):
    """A webhook payload that cannot become canonical events; `reason` is safe to return to the sender."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Delivery:
    delivery_id: str
    events: tuple[CanonicalEvent, ...]


def field(obj: Any, path: str, at: str = "") -> Any:
    """`obj["a"]["b"]` for path "a.b", or PayloadError naming the missing or mistyped step (after `at`)."""
    current = obj
    walked = [at] if at else []
    for step in path.split("."):
        walked.append(step)
        if not isinstance(current, dict):
            raise PayloadError(f"'{'.'.join(walked[:-1]) or 'payload'}' must be an object")
        if step not in current or current[step] is None:
            raise PayloadError(f"'{'.'.join(walked)}' is missing")
        current = current[step]
    return current


def ident(value: Any, path: str) -> str:
    """Platform ids arrive as numbers or strings; the contract wants strings."""
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise PayloadError(f"'{path}' must be an id (number or string)")
    return str(value)


def unix_ms(value: Any, path: str) -> int:
    """Unix seconds (or milliseconds, when the number is that large) as epoch milliseconds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"'{path}' must be a unix time")
    return int(value) if value > 10**11 else int(value * 1000)


def event(**fields: Any) -> CanonicalEvent:
    """Builds a canonical event through the contract's validator, so a mapper cannot emit a bad one."""
    try:
        return validate({k: v for k, v in fields.items() if v is not None})
    except InvalidEvent as exc:
        raise PayloadError(f"mapped event breaks the contract: {exc.reason}") from None
