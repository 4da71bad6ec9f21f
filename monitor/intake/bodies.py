"""How many large response bodies the fetch threads hold at once.

A body is read whole before it is parsed, and the size cap is 10 MiB. Forty-eight fetch
threads could each hold one: a gzip bomb is read up to the cap before it is refused, and an
oversize feed waits whole for the parser process. Past `threshold` bytes a fetch must hold
one of a few slots until its document is parsed (or refused); the others read their large
bodies after it. Small bodies, almost every feed, never wait.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

__all__ = ["LARGE_BODY_BYTES", "LARGE_BODY_SLOTS", "BodyTicket", "LargeBodies"]

LARGE_BODY_BYTES = 1024 * 1024
# One: a body at the cap is held twice while it is joined (its pieces, then the whole), so
# each slot can cost 20 MB at the peak; large feeds are rare, and they wait for one another.
LARGE_BODY_SLOTS = 1


class LargeBodies:
    """At most `slots` fetches hold a body larger than `threshold` bytes at a time."""

    def __init__(self, slots: int = LARGE_BODY_SLOTS, threshold: int = LARGE_BODY_BYTES) -> None:
        self.threshold = threshold
        self._semaphore = threading.BoundedSemaphore(slots)

    def ticket(self) -> BodyTicket:
        """One fetch's ticket: a slot is taken only if its body grows past the threshold."""
        return BodyTicket(self)

    def take(self, wait_s: float) -> bool:
        """A slot, waiting at most `wait_s`; False if none came free."""
        return self._semaphore.acquire(timeout=wait_s)

    def give(self) -> None:
        self._semaphore.release()


class BodyTicket:
    """Held for one fetch and the parse of its document (`with`); `need` takes the slot."""

    def __init__(self, bodies: LargeBodies) -> None:
        self.bodies = bodies
        self.held = False

    @property
    def threshold(self) -> int:
        return self.bodies.threshold

    def need(self, deadline: float) -> bool:
        """Take a slot (once) before reading on past the threshold; False if none came free
        by `deadline` (time.monotonic())."""
        if self.held:
            return True
        wait_s = max(deadline - time.monotonic(), 0.0)
        self.held = self.bodies.take(wait_s)
        return self.held

    def release(self) -> None:
        if self.held:
            self.held = False
            self.bodies.give()

    def __enter__(self) -> BodyTicket:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
