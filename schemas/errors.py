"""The exception tree of `schemas`.

SchemaError
 +-- LineProblem         what is wrong with one line of input: the field, the problem, the line
     +-- InvalidEvent    one event (or NDJSON line) breaks the contract
     |   +-- EventAhead  its `ts` is further ahead of the wall clock than the allowed skew (`ClockLimit`)
     +-- InvalidSnapshot one line of an audience snapshot file (followers, views) is not a snapshot
"""

from __future__ import annotations

from typing import Self


class SchemaError(Exception):
    """Root of every error raised by the `schemas` package."""


class LineProblem(SchemaError):
    """What is wrong with one line of input.

    `field` names the offending field (`None` when the line as a whole is wrong, e.g. not JSON), `problem`
    says what was wrong in words a person can act on, and `line` is the 1-based line number in a file or
    message when known.
    """

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

    def at_line(self, line: int) -> Self:
        return type(self)(self.field, self.problem, line=line)


class InvalidEvent(LineProblem):
    """An event that breaks the contract (see `LineProblem` for its fields)."""

    code = "invalid_event"  # the dead-letter code (`pulse.error.code`)


class EventAhead(InvalidEvent):
    """Valid by the contract, but stamped further ahead of the wall clock than the pipeline accepts."""

    code = "ts_ahead_of_clock"


class InvalidSnapshot(LineProblem):
    """A line of an audience snapshot file that is not a snapshot (schemas/audience.py)."""
