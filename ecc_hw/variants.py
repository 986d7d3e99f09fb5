"""The tool's named variants as string enums, one class per choice.

Each member is a ``str`` equal to its value (``Method.ECC == "ecc"``), prints and formats as that value
and is written to JSON as it, so parameter files, manifests and messages read exactly as with plain
strings, and values read back from a file compare equal to the members. The CLI takes its ``choices=``
from these classes.
"""
from __future__ import annotations

import enum

from .errors import UserError


class Variant(str, enum.Enum):
    """Base of the variant enums: ``str()`` and ``format()`` give the value, not ``Class.MEMBER``."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return self.value.__format__(spec)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """Every value, in declaration order (the CLI's ``choices``)."""
        return tuple(member.value for member in cls)

    @classmethod
    def parse(cls, value, field: str):
        """The member whose value is ``value``; a UserError naming ``field`` for anything else."""
        try:
            return cls(value)
        except ValueError:
            raise UserError(f"'{value}' is not one of {', '.join(cls.values())}", field=field) from None


class Topology(Variant):
    """Which converter takes a model: ``auto`` (the chain converter where it accepts the model, else the
    graph converter), ``chain`` or ``graph`` (docs/graphs.md)."""

    AUTO = "auto"
    CHAIN = "chain"
    GRAPH = "graph"


class InputKind(Variant):
    """What the network reads: images (a constant current) or event frames (docs/events.md)."""

    IMAGE = "image"
    EVENTS = "events"


class Coding(Variant):
    """How spikes carry values: rate (counts) or binary (radix: a spike at step t weighs 2^(T-t))."""

    RATE = "rate"
    BINARY = "binary"


class Method(Variant):
    """Conversion method (ecc_hw.methods, docs/methods.md)."""

    ECC = "ecc"
    WN2017 = "wn2017"
    RMP = "rmp"
    RADIX = "radix"

    @property
    def coding(self) -> Coding:
        """Binary coding for radix, rate coding for every other method."""
        return Coding.BINARY if self is Method.RADIX else Coding.RATE


class Memory(Variant):
    """Where the hardware keeps its banks: dual-port block RAM or iCE40 UP5K SPRAM."""

    BRAM = "bram"
    SPRAM = "spram"


class TreMode(Variant):
    """TRE charge R_n spread over the T steps (docs/arithmetic.md 2.4) or added once at the start."""

    SPREAD = "spread"
    INITIAL = "initial"


class PoolMode(Variant):
    """An average pool composed into the next layer's weights (docs/arithmetic.md 1.2) or kept as a layer."""

    COMPOSE = "compose"
    LAYER = "layer"


class LambdaMode(Variant):
    """lambda_n of a spiking layer: the largest activation or a percentile of the positive ones (1.3)."""

    MAX = "max"
    PERCENTILE = "percentile"
