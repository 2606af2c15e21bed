"""Board profiles (boards/<name>/profile.json)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

BOARDS_DIR = Path(__file__).resolve().parent.parent / "boards"


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    heap_bytes: int
    max_alloc_bytes: int
    runtime_bytes: int
    flash_block_bytes: int
    fs_bytes: int
    flash_read_bytes_per_s: int
    flash_write_bytes_per_s: int
    clock_hz: int
    mpy_arch: str
    camera: str | None

    @property
    def budget(self) -> int:
        """Arena bytes a plan may use on this board."""
        return self.heap_bytes - self.runtime_bytes


def known_boards() -> list[str]:
    return sorted(p.parent.name for p in BOARDS_DIR.glob("*/profile.json"))


def load_board(name: str) -> Board:
    path = BOARDS_DIR / name / "profile.json"
    if not path.exists():
        raise ValueError(f"unknown board {name!r}; known boards: {', '.join(known_boards())}")
    return Board(**json.loads(path.read_text()))
