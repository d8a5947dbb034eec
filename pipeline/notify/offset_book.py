"""Which offsets of the alerts topic may be committed: those below the oldest alert some destination still
owes.

A record is `open`ed when read, `hold` once per delivery it starts (one alert to one destination, or a
dead-letter write), and `release`d as each ends; the intake's own hold is released once the record is
handed out, so a record with nothing to deliver is done at once. A partition's committable offset is its
oldest unfinished record, or the next offset to read when nothing is unfinished. Partitions taken away by
a rebalance are `forget`-ten: their tokens go stale and releasing a stale token does nothing (the records
are re-read from the committed offset by whoever owns the partition now).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

P = TypeVar("P", bound=Hashable)  # a topic-partition


class Token(NamedTuple, Generic[P]):
    partition: P
    generation: int
    offset: int


@dataclass(slots=True)
class _Partition:
    generation: int
    next_offset: int  # the offset after the newest record read
    unfinished: dict[int, int] = field(default_factory=dict)  # offset -> holds
    committed: int | None = None

    def safe(self) -> int:
        return min(self.unfinished) if self.unfinished else self.next_offset


class OffsetBook(Generic[P]):
    def __init__(self) -> None:
        self._partitions: dict[P, _Partition] = {}
        self._generation = 0

    def start_at(self, partition: P, offset: int) -> None:
        """A freshly assigned partition whose next record is `offset`: committable as it is, so a new group
        pins its starting point at once."""
        self._generation += 1
        self._partitions[partition] = _Partition(self._generation, offset)

    def forget(self, partitions: Iterable[P]) -> None:
        for partition in partitions:
            self._partitions.pop(partition, None)

    def open(self, partition: P, offset: int) -> Token[P]:
        """A record was read; it holds its offset until `release`d once (plus once per `hold`)."""
        book = self._partitions.get(partition)
        if book is None:
            self._generation += 1
            book = self._partitions[partition] = _Partition(self._generation, offset)
        book.unfinished[offset] = book.unfinished.get(offset, 0) + 1
        book.next_offset = max(book.next_offset, offset + 1)
        return Token(partition, book.generation, offset)

    def hold(self, token: Token[P], times: int = 1) -> None:
        """`times` more deliveries wait on the record (as many `release`s end them)."""
        book = self._current(token)
        if book is not None and times > 0:
            book.unfinished[token.offset] = book.unfinished.get(token.offset, 0) + times

    def release(self, token: Token[P]) -> None:
        book = self._current(token)
        if book is None or token.offset not in book.unfinished:
            return
        book.unfinished[token.offset] -= 1
        if book.unfinished[token.offset] <= 0:
            del book.unfinished[token.offset]

    def committable(self) -> dict[P, int]:
        """Per partition, the offset to commit, where it moved since the last `committed`."""
        return {p: b.safe() for p, b in self._partitions.items() if b.safe() != b.committed}

    def committed(self, offsets: Mapping[P, int]) -> None:
        for partition, offset in offsets.items():
            book = self._partitions.get(partition)
            if book is not None:
                book.committed = offset

    @property
    def partitions(self) -> set[P]:
        return set(self._partitions)

    @property
    def unfinished(self) -> int:
        return sum(len(b.unfinished) for b in self._partitions.values())

    def _current(self, token: Token[P]) -> _Partition | None:
        book = self._partitions.get(token.partition)
        return book if book is not None and book.generation == token.generation else None
