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

    def _place(self) -> list[int]:
        n = len(self._sizes)
        # Reverse addition order, then a stable sort by size, descending.
        order = sorted(reversed(range(n)), key=lambda i: -self._sizes[i])
        offsets = [0] * n
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

    def offsets(self) -> list[int]:
        if self._offsets is None:
            self._offsets = self._place()
        return self._offsets

    def offset(self, buffer_id: int) -> int:
        return self.offsets()[buffer_id]

    def peak(self) -> int:
        offs = self.offsets()
        return max((o + s for o, s in zip(offs, self._sizes)), default=0)
