"""What every platform mapper shares: the result type, the error, and field access that names the path."""

from __future__ import annotations

import math
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


def an_object(value: Any, path: str) -> dict[str, Any]:
    """`value` if it is a JSON object, or PayloadError naming `path`."""
    if not isinstance(value, dict):
        raise PayloadError(f"'{path}' must be an object")
    return value


def optional_object(obj: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    """`obj[key]` if it is an object, {} if it is missing or null (or false: some senders write that for
    "none"), PayloadError naming `path` if it is anything else."""
    value = obj.get(key)
    if value is None or value is False:
        return {}
    return an_object(value, path)


def word(value: Any, path: str) -> str:
    """A name the platform sends as a string (an update's type, a verb), or PayloadError naming `path`."""
    if not isinstance(value, str):
        raise PayloadError(f"'{path}' must be a string")
    return value


def ident(value: Any, path: str) -> str:
    """Platform ids arrive as numbers or strings; the contract wants strings."""
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise PayloadError(f"'{path}' must be an id (number or string)")
    return str(value)


def unix_ms(value: Any, path: str) -> int:
    """Unix seconds (or milliseconds, when the number is that large) as epoch milliseconds."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PayloadError(f"'{path}' must be a unix time")
    ms = value if value > 10**11 else value * 1000
    if not -(2**62) < ms < 2**62:  # the contract's range check then names the problem
        raise PayloadError(f"'{path}' is not a unix time: {value!r} is out of any range")
    return int(ms)


def event(**fields: Any) -> CanonicalEvent:
    """Builds a canonical event through the contract's validator, so a mapper cannot emit a bad one."""
    try:
        return validate({k: v for k, v in fields.items() if v is not None})
    except InvalidEvent as exc:
        raise PayloadError(f"mapped event breaks the contract: {exc.reason}") from None
