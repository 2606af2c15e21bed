"""MUL (int8, broadcasting) -> device mul step: lowered with ADD (op_add.py)."""
from .op_add import lower  # noqa: F401
