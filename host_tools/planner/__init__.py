"""Memory planners behind one small interface, as in TFLite Micro.

Add buffers with the first and last time (op step) they are used, then ask
for each buffer's offset and for the peak (the arena size the plan needs).
"""
from __future__ import annotations

from typing import Protocol

from .greedy import BestOrderPlanner, GreedyPlanner


class MemoryPlanner(Protocol):
    def add_buffer(self, size: int, first_use: int, last_use: int) -> int:
        """Register a buffer; returns its id (ids count up from 0)."""

    def offset(self, buffer_id: int) -> int:
        """The buffer's byte offset in the arena."""

    def peak(self) -> int:
        """The arena size the plan needs (highest end offset of any buffer)."""


__all__ = ["MemoryPlanner", "GreedyPlanner", "BestOrderPlanner"]
