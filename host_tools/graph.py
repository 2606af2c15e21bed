"""The graph IR shared by every host pass.

A `Graph` holds tensors and the ops in execution order. Tensors know their
producer and consumers; constant tensors carry their data. Every later pass
(lifetimes, planning, spilling, bundle writing) reads this structure.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DTYPE_SIZES = {
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "int32": 4,
    "int64": 8,
    "float32": 4,
    "bool": 1,
}


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: np.ndarray | None = None  # float32, one value or one per channel
    zero_point: np.ndarray | None = None  # int64, same length as scale
    quant_axis: int = 0
    data: np.ndarray | None = None  # constant contents, shaped like `shape`
    producer: int | None = None  # index of the op that writes it
    consumers: list[int] = field(default_factory=list)
    in_flash: bool = False  # a spilled copy: lives in the spill store, not the arena

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.elements * DTYPE_SIZES[self.dtype]

    def qparams(self) -> tuple[float, int]:
        """The per-tensor scale and zero point (activations are per-tensor)."""
        if self.scale is None or len(self.scale) == 0:
            raise ValueError(f"tensor {self.index} '{self.name}' is not quantised")
        return float(self.scale[0]), int(self.zero_point[0])


@dataclass
class Op:
    index: int
    kind: str  # TFLite builtin name, e.g. "CONV_2D"
    inputs: list[int]  # tensor indices; -1 marks an omitted optional input
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)
    source_index: int = -1  # position of the op in the .tflite file

    @property
    def label(self) -> str:
        """How every report names this op: 'op N KIND', N its index in the
        .tflite file (what Netron shows), the same before and after shape ops
        are folded and SPILLs inserted; an op the planner added has no N."""
        return f"op {self.source_index} {self.kind}" if self.source_index >= 0 else f"{self.kind} (inserted)"


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    name: str = ""

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def add_tensor(self, like: Tensor, name: str, **changes: object) -> Tensor:
        """A new tensor shaped and quantised like `like` (links: call relink())."""
        t = Tensor(index=len(self.tensors), name=name, shape=like.shape, dtype=like.dtype, scale=like.scale,
                   zero_point=like.zero_point, quant_axis=like.quant_axis)
        for k, v in changes.items():
            setattr(t, k, v)
        self.tensors.append(t)
        return t

    def relink(self) -> None:
        """Recompute producer/consumer links after ops were added or removed."""
        for t in self.tensors:
            t.producer = None
            t.consumers = []
        for pos, op in enumerate(self.ops):
            op.index = pos
            for i in op.inputs:
                if i >= 0 and pos not in self.tensors[i].consumers:
                    self.tensors[i].consumers.append(pos)
            for o in op.outputs:
                self.tensors[o].producer = pos

    def op_histogram(self) -> dict[str, int]:
        hist: dict[str, int] = {}
        for op in self.ops:
            hist[op.kind] = hist.get(op.kind, 0) + 1
        return hist
