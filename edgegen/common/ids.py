"""Device and module ids as IoT Hub takes them (pure): the one place every entry point checks an id.

IoT Hub's identity registry: a device id or module id is a case-sensitive string of 1 to 128 ASCII (7-bit)
letters and digits plus ``- . + % _ # * ? ! ( ) , : = @ $ '``. So no ``/`` (``a/b`` can never pose as module
``b`` of device ``a``, in a URL, a topic or a storage path), no spaces, no control or non-ASCII characters.
(learn.microsoft.com: "Understand the identity registry in your IoT hub", device and module identity properties.)

Used by the stand-in's REST bodies and URLs, MQTT CONNECT (client id and user name), ``edgegen add`` (module
names) and ``edgegen hub device create``.
"""

from __future__ import annotations

import re

from edgegen.errors import EdgegenError

__all__ = ["ID_CHARS", "MAX_ID_LENGTH", "InvalidIdError", "check_device_id", "check_id", "check_module_id",
           "id_problem"]

MAX_ID_LENGTH = 128
ID_CHARS = "- . + % _ # * ? ! ( ) , : = @ $ '"
_ID = re.compile(r"[A-Za-z0-9\-.+%_#*?!(),:=@$']+", re.ASCII)
_HINT = f"use 1 to {MAX_ID_LENGTH} ASCII letters, digits and {ID_CHARS} (as IoT Hub does)"


class InvalidIdError(EdgegenError):
    """A device or module id IoT Hub would refuse."""


def id_problem(value: object, kind: str = "device id") -> str | None:
    """What is wrong with ``value`` as an IoT Hub id, or None when it is a valid one."""
    if not isinstance(value, str):
        return f"the {kind} must be a string, not {type(value).__name__}"
    if not value:
        return f"the {kind} is empty"
    if len(value) > MAX_ID_LENGTH:
        return f"the {kind} is {len(value)} characters long; IoT Hub allows at most {MAX_ID_LENGTH}"
    if _ID.fullmatch(value) is None:
        bad = next(c for c in value if _ID.fullmatch(c) is None)
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the {kind} {shown!r} has {bad!r}, which IoT Hub does not allow in ids"
    return None


def check_id(value: object, kind: str = "device id") -> str:
    """``value`` when it is a valid IoT Hub id; else ``InvalidIdError`` saying what is wrong and what to use."""
    problem = id_problem(value, kind)
    if problem is not None:
        raise InvalidIdError(problem, hint=_HINT)
    assert isinstance(value, str)
    return value


def check_device_id(value: object) -> str:
    return check_id(value, "device id")


def check_module_id(value: object) -> str:
    return check_id(value, "module id")
