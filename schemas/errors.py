"""The exception tree of `schemas`.

SchemaError
 +-- InvalidEvent      one event (or NDJSON line) breaks the contract; carries the field and the problem
 |   +-- EventAhead    its `ts` is further ahead of the wall clock than the allowed skew (`ClockLimit`)
 +-- InvalidSnapshot   one line of an audience snapshot file (followers, views) is not a snapshot; carries
                       the field, the problem and the line
"""

from __future__ import annotations


class SchemaError(Exception):
    """Root of every error raised by the `schemas` package."""


class InvalidEvent(SchemaError):
    """An event that breaks the contract.

    `field` names the offending field (`None` when the line as a whole is wrong, e.g. not JSON), `problem`
    says what was wrong in words a person can act on, and `line` is the 1-based line number in a file or
    message when known.
    """

    code = "invalid_event"  # the dead-letter code (`pulse.error.code`)

    def __init__(self, field: str | None, problem: str, *, line: int | None = None) -> None:
        self.field = field
        self.problem = problem
        self.line = line
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        what = f"field '{self.field}': " if self.field is not None else ""
        return f"{where}{what}{self.problem}"

    def at_line(self, line: int) -> InvalidEvent:
        return type(self)(self.field, self.problem, line=line)


class EventAhead(InvalidEvent):
    """Valid by the contract, but stamped further ahead of the wall clock than the pipeline accepts."""

    code = "ts_ahead_of_clock"


class InvalidSnapshot(SchemaError):
    """A line of an audience snapshot file that is not a snapshot (schemas/audience.py): as `InvalidEvent`,
    `field` (or `None` for the line as a whole), `problem`, and the 1-based `line` when known."""

    def __init__(self, field: str | None, problem: str, *, line: int | None = None) -> None:
        self.field = field
        self.problem = problem
        self.line = line
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        what = f"field '{self.field}': " if self.field is not None else ""
        return f"{where}{what}{self.problem}"

    def at_line(self, line: int) -> InvalidSnapshot:
        return type(self)(self.field, self.problem, line=line)
