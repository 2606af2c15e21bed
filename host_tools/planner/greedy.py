"""Greedy-by-size placement, the algorithm of TFLite Micro's GreedyMemoryPlanner.

Buffers are placed largest first; each goes into the lowest gap between
already placed buffers whose lifetimes overlap its own. Ties in size keep
TFLite Micro's order (its stable sort runs over the buffers listed in reverse
order of addition), so offsets match the reference byte for byte.
"""
from __future__ import annotations


class GreedyPlanner:
    def __init__(self) -> None:
        self._sizes: list[int] = []
        self._first: list[int] = []
        self._last: list[int] = []
        self._offsets: list[int] | None = None

    def add_buffer(self, size: int, first_use: int, last_use: int) -> int:
        if size < 0 or last_use < first_use:
            raise ValueError(f"bad buffer: size={size} first={first_use} last={last_use}")
        self._sizes.append(size)
        self._first.append(first_use)
        self._last.append(last_use)
        self._offsets = None
        return len(self._sizes) - 1

    def _orders(self) -> list[list[int]]:
        """Placement orders to try; TFLite Micro's is the only one here."""
        n = len(self._sizes)
        # Reverse addition order, then a stable sort by size, descending.
        return [sorted(reversed(range(n)), key=lambda i: -self._sizes[i])]

    def _place(self, order: list[int]) -> list[int]:
        """Put each buffer, in `order`, into the lowest gap among the placed
        buffers alive at the same time."""
        offsets = [0] * len(self._sizes)
        placed: list[int] = []  # buffer ids, kept sorted by offset
        for b in order:
            first, last, size = self._first[b], self._last[b], self._sizes[b]
            candidate = 0
            for other in placed:
                if self._first[other] > last or first > self._last[other]:
                    continue  # not alive at the same time
                if offsets[other] - candidate >= size:
                    break  # the gap before `other` is big enough
                candidate = max(candidate, offsets[other] + self._sizes[other])
            offsets[b] = candidate
            # Insert after every entry whose offset is <= candidate (TFLM order).
            pos = len(placed)
            for k, other in enumerate(placed):
                if offsets[other] > candidate:
                    pos = k
                    break
            placed.insert(pos, b)
        return offsets

    def _peak_of(self, offsets: list[int]) -> int:
        return max((o + s for o, s in zip(offsets, self._sizes)), default=0)

    def offsets(self) -> list[int]:
        if self._offsets is None:
            self._offsets = min((self._place(order) for order in self._orders()), key=self._peak_of)
        return self._offsets

    def offset(self, buffer_id: int) -> int:
        return self.offsets()[buffer_id]

    def peak(self) -> int:
        return self._peak_of(self.offsets())


class BestOrderPlanner(GreedyPlanner):
    """The same gap-filling placement tried in several orders (TFLite Micro's
    first, then by lifetime and by size x lifetime); the lowest peak wins.
    Greedy-by-size alone can leave gaps that no later buffer fits."""

    def _orders(self) -> list[list[int]]:
        ids = range(len(self._sizes))
        span = [self._last[i] - self._first[i] + 1 for i in ids]
        return super()._orders() + [
            sorted(ids, key=lambda i: (-span[i], -self._sizes[i])),
            sorted(ids, key=lambda i: (-self._sizes[i] * span[i], i)),
            sorted(ids, key=lambda i: (self._first[i], -self._sizes[i])),
        ]
