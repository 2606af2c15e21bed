"""Board profiles (boards/<name>/profile.json)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# A wheel carries boards/ as host_tools/boards_data (setup.py); a checkout,
# editable install included, reads boards/ in place.
_PACKAGED = Path(__file__).resolve().parent / "boards_data"
BOARDS_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parent.parent / "boards"


# mpy-cross -march values of ARM cores (the RP2040's armv6m, ...): their
# firmware has the inline Thumb assembler, the ESP32's (xtensawin) has not.
ARM_ARCHS = ("armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp")


def is_arm(mpy_arch: str | None) -> bool:
    return mpy_arch in ARM_ARCHS


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
    measured: dict | None = None  # field -> the command that measured it (others are typical figures)
    plan_costs: dict | None = None  # the planner's latency weights on this chip (streaming.Costs fields)

    @property
    def costs(self):
        """The planner's cost model for this board: its measured plan_costs, else the unix port's."""
        from .streaming import UNIX_PORT, Costs

        return Costs(**self.plan_costs) if self.plan_costs else UNIX_PORT

    @property
    def budget(self) -> int:
        """Arena bytes a plan may use on this board: the usable heap minus
        what the runtime itself keeps, and no more than the largest single
        block the board can allocate (the arena is one bytearray; a no-PSRAM
        ESP32's heap is split into regions smaller than the heap)."""
        return min(self.heap_bytes - self.runtime_bytes, self.max_alloc_bytes)

    @property
    def thumb(self) -> bool:
        """Its firmware runs the Thumb kernels: bundles for it carry their layouts."""
        return is_arm(self.mpy_arch)

    def budget_note(self) -> str:
        """Where the budget comes from, for plan output."""
        usable = self.heap_bytes - self.runtime_bytes
        why = f"heap {self.heap_bytes:,d} - runtime {self.runtime_bytes:,d} = {usable:,d}"
        if self.max_alloc_bytes < usable:
            return (f"{self.name}: arena budget {self.budget:,d} bytes, the largest block it can allocate "
                    f"(max_alloc_bytes; {why})")
        return f"{self.name}: arena budget {self.budget:,d} bytes ({why})"


def known_boards() -> list[str]:
    return sorted(p.parent.name for p in BOARDS_DIR.glob("*/profile.json"))


def load_board(name: str) -> Board:
    path = BOARDS_DIR / name / "profile.json"
    if not path.exists():
        raise ValueError(f"unknown board {name!r}; known boards: {', '.join(known_boards())}")
    return Board(**json.loads(path.read_text()))
