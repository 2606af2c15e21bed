"""SUB (int8, broadcasting) -> device sub step: lowered with ADD (op_add.py),
the second input's scaled-value table negated."""
from .op_add import lower  # noqa: F401
