"""Synapse lane: read-modify-write of one membrane bank, one update per clock, hazard-free."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .checks import check_bool, check_int, check_ints, check_type
from .pipeline import delayed
from .plan import bits_for, rom_depth

UPDATE_FIELDS = ("group", "maddr", "waddr", "value")


class SynapseLane(wiring.Component):
    """One lane of the synapse array: owns the weight ROM of its channels (``co % P == lane``).

    Members
    -------
    update : In(stream.Signature(update_layout, always_ready=True))
        The walker's command (shared by all lanes); this lane acts on it when ``group`` names one
        of its channels (``group * P + lane < C_out``).
    rd_addr : Out(bank address)
        Read address of the membrane bank (registered read).
    rd_data : In(signed(width))
    wr_addr, wr_data, wr_en : Out
        Write port of the membrane bank.
    busy : Out(1)
        An update is past stage A (its write is still to come).
    shift : In(range(max_shift + 1)), only with ``max_shift`` > 0
        Binary-coded (radix) input: the weight is added shifted left by ``shift`` (T - t for spikes
        of step t, so Horner's rule needs no multiplier); stable while updates are in flight.

    Pipeline with ``registered_read`` (dual-port block RAM banks, the default): A (cycle k) weight
    ROM address; A2 (k+1) the ROM's read data registered; B (k+2) weight * value (or weight <<
    shift), bank read address; C (k+3) the bank's read data is registered, or, when one of the two
    updates ahead is writing (D) or wrote (the cycle before) the same neuron, that update's sum
    instead (forwarding: the bank needs no transparent read port, and no adder or multiplier
    follows a RAM's clock-to-out in the same cycle); D (k+4) the sum is written back. An update
    issued in cycle k is in the bank after cycle k+4.

    Without ``registered_read`` (single-port SPRAM banks, read in one cycle and written in the
    next; updates at least two cycles apart): A, B as above, C (k+2) bank data + product written
    back; the bank is in the write's cycle, so the next read (k+3 or later) sees it. An update
    issued in cycle k is in the bank after cycle k+2.

    Throughput: one update per clock (per two clocks on single-port banks); back-to-back updates
    to one neuron are exact.

    Parameters (keyword-only)
    ----------
    weights : list of int
        The lane's weight ROM, ``weight_bits``-bit two's complement words.
    weight_bits : int, at least 2
    update_layout : StructLayout with the fields group, maddr, waddr and value
        The walker's command (``rtl_gen.walker.update_layout``); a 1-bit unsigned ``value`` is a spike
        (the weight is added as is), any other value shape multiplies the weight.
    width : int, at least 2
        Membrane (or current) bits.
    depth : int, at least 2
        Words of the bank (its address is ``bits_for(depth - 1)`` wide).
    lane, lanes, channels : int
        This lane's number in 0..lanes-1, the lane count and the layer's output channels.
    max_shift : int, at least 0
        The largest ``shift`` (binary coding); 0: no ``shift`` member.
    registered_read : bool
        Dual-port banks (the pipeline above with forwarding); ``False``: single-port banks.
    """

    # Cycles from an update on ``update`` (stage A, cycle k) to the end of its write: A, A2 (the weight
    # ROM's read data registered), B (product, bank address), C (bank data registered or forwarded) and
    # D (write), k..k+4; ``busy`` is high in A2..D (the walker's ``busy`` covers A, its output register).
    DUAL_PORT_STAGES = 5
    # Single-port banks: A, B and C (bank data + product written), k..k+2; ``busy`` in B and C.
    SINGLE_PORT_STAGES = 3

    def __init__(self, *, weights: list[int], weight_bits: int, update_layout: data.StructLayout, width: int,
                 depth: int, lane: int, lanes: int, channels: int, max_shift: int = 0,
                 registered_read: bool = True):
        owner = "SynapseLane"
        weights = check_ints(owner, "weights", weights)
        check_int(owner, "weight_bits", weight_bits, 2)
        limit = 1 << (weight_bits - 1)
        for address, weight in enumerate(weights):
            if not -limit <= weight < limit:
                raise ValueError(f"{owner}: weight {weight} at address {address} does not fit in "
                                 f"{weight_bits} bits")
        check_type(owner, "update_layout", update_layout, data.StructLayout)
        fields = tuple(name for name, _ in update_layout)
        if sorted(fields) != sorted(UPDATE_FIELDS):
            raise ValueError(f"{owner}: update_layout must have the fields {', '.join(UPDATE_FIELDS)}, "
                             f"not {', '.join(fields)}")
        check_int(owner, "width", width, 2)
        check_int(owner, "depth", depth, 2)
        check_int(owner, "lanes", lanes, 1)
        check_int(owner, "lane", lane, 0)
        if lane >= lanes:
            raise ValueError(f"{owner}: lane must be below lanes ({lanes}), not {lane}")
        check_int(owner, "channels", channels, 1)
        check_int(owner, "max_shift", max_shift, 0)
        check_bool(owner, "registered_read", registered_read)
        self.weights = weights
        self.weight_bits = weight_bits
        self.width = width
        self.lane_groups = max(0, -(-(channels - lane) // lanes))
        self.multiply = update_layout.members["value"] != unsigned(1)
        self.max_shift = max_shift
        self.registered_read = registered_read
        members = {
            "update": In(stream.Signature(update_layout, always_ready=True)),
            "rd_addr": Out(bits_for(depth - 1)),
            "rd_data": In(signed(width)),
            "wr_addr": Out(bits_for(depth - 1)),
            "wr_data": Out(signed(width)),
            "wr_en": Out(1),
            "busy": Out(1),
        }
        if self.max_shift:
            members["shift"] = In(range(self.max_shift + 1))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.weights = rom = Memory(shape=signed(self.weight_bits),
                                            depth=rom_depth(len(self.weights)), init=self.weights)
        rp = rom.read_port()
        upd = self.update.payload
        m.d.comb += rp.addr.eq(upd.waddr)

        valid_b = Signal()
        maddr_b = Signal.like(upd.maddr)
        value_b = Signal.like(upd.value)
        valid_c = Signal()
        maddr_c = Signal.like(upd.maddr)
        product_c = Signal(signed(self.width))
        valid_a = self.update.valid & (upd.group < self.lane_groups)
        maddr_a, value_a, weight = upd.maddr, upd.value, rp.data
        if self.registered_read:     # the weight ROM's read data gets a register of its own (A2)
            valid_a, maddr_a, value_a, weight = delayed(
                m, {"valid": valid_a, "maddr": maddr_a, "value": value_a, "weight": weight}, "a2")
        m.d.sync += [valid_b.eq(valid_a), maddr_b.eq(maddr_a), value_b.eq(value_a)]
        product = weight * value_b if self.multiply else weight
        if self.max_shift:
            product = product << self.shift
        m.d.sync += [valid_c.eq(valid_b), maddr_c.eq(maddr_b), product_c.eq(product)]
        m.d.comb += self.rd_addr.eq(maddr_b)
        if not self.registered_read:
            m.d.comb += [
                self.wr_addr.eq(maddr_c),
                self.wr_data.eq(self.rd_data + product_c),
                self.wr_en.eq(valid_c),
                self.busy.eq(valid_b | valid_c),
            ]
            return m

        valid_d = Signal()
        maddr_d = Signal.like(upd.maddr)
        old_d = Signal(signed(self.width))
        product_d = Signal(signed(self.width))
        sum_d = Signal(signed(self.width))
        sum_e = Signal(signed(self.width))
        near_c = Signal()       # the update one ahead writes this neuron in D while this one is in C
        far_c = Signal()        # the update two ahead wrote it in the cycle of this one's read
        m.d.comb += sum_d.eq(old_d + product_d)
        m.d.sync += [
            near_c.eq(valid_c & (maddr_c == maddr_b)), far_c.eq(valid_d & (maddr_d == maddr_b)),
            valid_d.eq(valid_c), maddr_d.eq(maddr_c), product_d.eq(product_c),
            old_d.eq(Mux(near_c, sum_d, Mux(far_c, sum_e, self.rd_data))),
            sum_e.eq(sum_d),
        ]
        m.d.comb += [
            self.wr_addr.eq(maddr_d),
            self.wr_data.eq(sum_d),
            self.wr_en.eq(valid_d),
            self.busy.eq(valid_a | valid_b | valid_c | valid_d),
        ]
        return m
