"""How often a wait for a consumer group to commit its input reads the group's lag again."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class WaitPace:
    """The sleep before the next read of what is `left` (messages not committed yet): `idle_s` while nothing
    has moved since the wait began, else `share` of the time the rest should take at the pace seen so far,
    kept within `min_s` and `max_s`.

    Each read of a lag costs about 2 ms of CPU (two requests and kafka-python's network thread): a
    `pulse run --replay` read it every 0.1 s through the 10-20 s of its processing, 0.3-0.4 s of CPU. Far
    from the end a read a second does as well; near it the reads come more often than before, so the end
    is seen sooner. Only a group that speeds up to more than 1/`share` times its pace so far is seen later
    than at the next read after its end, by at most `max_s`. A lag that grows (input still coming) starts
    the estimate again."""

    idle_s: float = 0.1
    min_s: float = 0.05
    max_s: float = 1.0
    share: float = 0.25
    _since: tuple[float, int] | None = field(default=None, init=False)  # (when, left) the estimate starts

    def next_s(self, now_s: float, left: int) -> float:
        if self._since is None or left > self._since[1]:
            self._since = (now_s, left)
            return self.idle_s
        since_s, left_then = self._since
        done = left_then - left
        if done <= 0 or now_s <= since_s:
            return self.idle_s
        rest_s = left * (now_s - since_s) / done
        return min(self.max_s, max(self.min_s, rest_s * self.share))
