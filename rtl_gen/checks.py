"""Argument checks for the components' constructors: each mistake raises ``TypeError`` (wrong kind of
value) or ``ValueError`` (right kind, wrong value) with a message naming the component and the parameter."""
from __future__ import annotations

from amaranth.lib import stream


def check_int(owner: str, name: str, value, minimum: int | None = None) -> int:
    """``value`` if it is an integer (a ``bool`` is not) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: {name} must be an integer, not {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}: {name} must be at least {minimum}, not {value}")
    return value


def check_ints(owner: str, name: str, values) -> list[int]:
    """``values`` (a list or tuple of integers) as a list."""
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{owner}: {name} must be a list of integers, not {values!r}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{owner}: {name} must be a list of integers, not one holding {value!r}")
    return list(values)


def check_bool(owner: str, name: str, value) -> bool:
    """``value`` if it is a ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be a bool, not {value!r}")
    return value


def check_choice(owner: str, name: str, value, choices: tuple):
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        allowed = " or ".join(repr(choice) for choice in choices)
        raise ValueError(f"{owner}: {name} must be {allowed}, not {value!r}")
    return value


def check_type(owner: str, name: str, value, kind, optional: bool = False):
    """``value`` if it is an instance of ``kind`` (or ``None`` when ``optional``)."""
    if optional and value is None:
        return value
    if not isinstance(value, kind):
        what = f"a {kind.__name__}" + (" or None" if optional else "")
        raise TypeError(f"{owner}: {name} must be {what}, not {value!r}")
    return value


def check_list(owner: str, name: str, values, kind) -> list:
    """``values`` if it is a list of ``kind`` instances."""
    if not isinstance(values, list):
        raise TypeError(f"{owner}: {name} must be a list of {kind.__name__}, not {values!r}")
    for value in values:
        if not isinstance(value, kind):
            raise TypeError(f"{owner}: {name} must be a list of {kind.__name__}, not one holding {value!r}")
    return values


def check_stream(owner: str, name: str, value):
    """``value`` if it is a stream interface (``amaranth.lib.stream``, either direction)."""
    if not isinstance(getattr(value, "signature", None), stream.Signature):
        raise TypeError(f"{owner}: {name} must be a stream interface, not {value!r}")
    return value
