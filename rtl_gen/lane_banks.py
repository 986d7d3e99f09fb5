"""Lane-banked memory: one memory per lane behind a shared read address, a lane-selected read and write."""
from __future__ import annotations

from amaranth.hdl import Const, Module, Signal, Value
from amaranth.lib.memory import Memory

from .checks import check_int
from .plan import bits_for, pow2_depth


class LaneBankedMemory:
    """``banks`` memories of ``depth`` words of ``shape`` (word w of lane l: bank l's word w), with one read
    and one write per cycle, and a clear that writes a word of every bank at once.

    A max-pool unit keeps its per-neuron words this way (neuron of channel c: lane c % P, word
    (c // P) * H * W + y * W + x), so that its clear sweep takes ceil(C / P) * H * W cycles, as the layer's
    membrane banks do, not C * H * W.

    Members (Signals; the user drives all but ``read_data``)
    -------
    read_addr : the word read in cycle k (every bank at once)
    read_lane : the lane whose word is wanted, in cycle k + 1
    read_data : the wanted word, in cycle k + 1 (registered read ports, not transparent: a word written in
        cycle k reads as before)
    write_addr, write_lane, write_data, write_en : written at the end of a cycle with ``write_en``

    Parameters (keyword-only): ``name``, ``shape``, ``banks`` (P), ``depth`` (words per bank), ``lane_bits``
    (the width of ``read_lane`` and ``write_lane``, at least ``bits_for(banks - 1)``), ``clear_en``
    and ``clear_addr`` (Values: while ``clear_en``, word ``clear_addr`` of every bank, if below ``depth``,
    is written ``clear_value`` instead of the write port's word).

    Latency and throughput: reads 1 cycle, one read and one write per cycle.

    Flattened (``add_to``), the memories named ``<name>0`` .. ``<name><banks-1>``, kept in ``memories``
    after ``add_to`` (for tests).
    """

    def __init__(self, *, name: str, shape, banks: int, depth: int, lane_bits: int, clear_en: Value,
                 clear_addr: Value, clear_value=0):
        owner = "LaneBankedMemory"
        self.name = name
        self.shape = shape
        self.banks = check_int(owner, "banks", banks, 1)
        self.depth = check_int(owner, "depth", depth, 1)
        self.clear_value = clear_value
        addr_bits = bits_for(self.depth - 1)
        lane_bits = check_int(owner, "lane_bits", lane_bits, bits_for(self.banks - 1))
        self.read_addr = Signal(addr_bits, name=f"{name}_rd_addr")
        self.read_lane = Signal(lane_bits, name=f"{name}_rd_lane")
        self.read_data = Signal(shape, name=f"{name}_rd_data")
        self.write_addr = Signal(addr_bits, name=f"{name}_wr_addr")
        self.write_lane = Signal(lane_bits, name=f"{name}_wr_lane")
        self.write_data = Signal(shape, name=f"{name}_wr_data")
        self.write_en = Signal(name=f"{name}_wr_en")
        self.clear_en, self.clear_addr = clear_en, clear_addr
        self.memories: list[Memory] = []

    def add_to(self, m: Module) -> None:
        """Add the banks and their ports to ``m``."""
        writing = Signal(self.banks, name=f"{self.name}_wr_onehot")     # one-hot: the bank written
        m.d.comb += writing.eq(Const(1, self.banks) << self.write_lane)
        reads = []
        for lane in range(self.banks):
            m.submodules[f"{self.name}{lane}"] = memory = Memory(shape=self.shape, depth=pow2_depth(self.depth),
                                                                 init=[])
            self.memories.append(memory)
            rd, wr = memory.read_port(), memory.write_port()
            m.d.comb += rd.addr.eq(self.read_addr)
            reads.append(rd)
            with m.If(self.clear_en):
                m.d.comb += [wr.addr.eq(self.clear_addr), wr.data.eq(self.clear_value),
                             wr.en.eq(self.clear_addr < self.depth)]
            with m.Else():
                m.d.comb += [wr.addr.eq(self.write_addr), wr.data.eq(self.write_data),
                             wr.en.eq(self.write_en & writing[lane])]
        with m.Switch(self.read_lane):
            for lane, rd in enumerate(reads):
                with m.Case(lane):
                    m.d.comb += self.read_data.eq(Value.cast(rd.data))
