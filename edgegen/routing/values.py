"""Runtime values of the condition language: the three-valued Bool and the Undefined marker."""

from __future__ import annotations

from enum import Enum
from typing import Final

__all__ = ["ABSENT", "FALSE", "TRUE", "UNDEFINED", "Absent", "Bool", "Ty"]


class Bool(Enum):
    """edgeHub's three-valued boolean. Only TRUE routes a message; UNDEFINED is neither true nor false."""

    FALSE = -1
    UNDEFINED = 0
    TRUE = 1

    def __bool__(self) -> bool:
        return self is Bool.TRUE

    def __str__(self) -> str:
        return self.name.lower()


TRUE: Final = Bool.TRUE
FALSE: Final = Bool.FALSE
UNDEFINED: Final = Bool.UNDEFINED  # the third truth value; ABSENT (below) is a missing *value*


class Absent:
    """The value of an absent property, a failed conversion or an unusable $body result (not null!)."""

    _instance: Absent | None = None

    def __new__(cls) -> Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False


ABSENT: Final = Absent()


class Ty(Enum):
    """Static types of condition expressions (edgeHub types them at compile time)."""

    BOOL = "bool"
    NUMBER = "number"
    STRING = "string"
    NULL = "null"
    UNDEFINED = "undefined"
    QUERY = "$body value"  # a $body query result: its JSON type is only known per message

    def __str__(self) -> str:
        return self.value
