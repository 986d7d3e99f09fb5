"""A layer's membrane (or current) banks and the multiplexing of their ports between the phases."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed
from amaranth.lib.memory import Memory

from .checks import check_bool, check_int, check_type
from .engine import IntegrationEngine
from .fire import FireSweep
from .plan import TargetPlan, pow2_depth
from .spram import SpramStackUnit


class MembraneBanks:
    """P banks of one layer (only lanes that own a channel), flattened into the top module.

    Dual-port banks (no ``stack``): one ``Memory`` per lane (submodules ``membrane<n>_<lane>``, or
    ``current<lane>`` for layer 1's constant current, ``current<n>_<lane>`` for a later layer's), each with one
    write port and one registered read
    port (not transparent: the lanes forward their own writes). With ``stack``: the lanes' fields of
    region ``layer<n>`` in an SPRAM stack (``rtl_gen.spram``: single-ported, the users read and write in
    different cycles), whose clear starts at the region's offset.

    Members
    -------
    ports : list of (read port, write port), one per lane that owns a channel
        Read port: ``addr`` (lane-local word), ``data`` one cycle later and, in a stack, ``req``;
        write port: ``addr``, ``data``, ``en``.
    clear_offset : int
        The first stack address of the banks (0 for dual-port banks): the clear sweep's address
        minus this is the bank's word.
    depth_used : int
        Words holding neurons (groups * H * W).

    Latency: a registered read (data one cycle after the address); a write is in the bank the cycle
    after its ``en``. Throughput: a read and a write per cycle (dual-port), or one of the two (stack).

    Flattened (``add_to`` adds the memories to the parent module, no module of its own), so the
    design's Verilog keeps one module per memory and unit, as before the top was split.

    Parameters (keyword-only)
    ----------
    target : TargetPlan
        The linear map into the layer (its output channels and used words).
    width : int, at least 2
        Bits of a word.
    lanes : int, at least 1
    current : bool
        The layer's constant-current banks (its edge from the image input) instead of its membranes.
    stack : SpramStackUnit or None
        The state stack holding the banks; ``None``: dual-port memories.
    """

    def __init__(self, *, target: TargetPlan, width: int, lanes: int, current: bool = False,
                 stack: SpramStackUnit | None = None):
        owner = "MembraneBanks"
        check_type(owner, "target", target, TargetPlan)
        check_int(owner, "width", width, 2)
        check_int(owner, "lanes", lanes, 1)
        check_bool(owner, "current", current)
        check_type(owner, "stack", stack, SpramStackUnit, optional=True)
        number = target.index + 1
        self.target = target
        self.current = current
        self.stack = stack
        self.depth_used = target.depth_used
        self.clear_offset = 0
        self.ports = []
        self.memories = {}
        self.name = ("current" if number == 1 else f"current{number}_") if current else f"membrane{number}_"
        bank = f"layer{number}_current" if current else f"layer{number}_membrane"
        depth = pow2_depth(target.depth_used)
        for lane in range(min(lanes, target.out_shape[0])):
            if stack is not None:
                self.ports.append(stack.bank(f"layer{number}", bank, lane, signed(width)))
                self.clear_offset = stack.stack.region(f"layer{number}").offset
                continue
            mem = Memory(shape=signed(width), depth=depth, init=[])
            self.memories[f"{self.name}{lane}"] = mem
            wp = mem.write_port()
            rp = mem.read_port()
            self.ports.append((rp, wp))

    def add_to(self, m: Module) -> None:
        """Add the memories (dual-port banks) to ``m``."""
        for name, mem in self.memories.items():
            m.submodules[name] = mem


class BankMux:
    """The port multiplexing of one layer's banks: the phases that use them are exclusive.

    Read address: the fire sweep's while it is busy, else the lanes' (integration); the output layer's
    while the readout reads. Write port: the clear sweep's while clearing (value ``clear_value`` at the
    words ``clear_offset .. clear_offset + depth_used - 1`` of the sweep), else the fire sweep's (a
    membrane bank it updates), else the lanes'. The read data go to the lanes and the sweep (``v_data``,
    or ``i_data`` for a current bank). In a stack, each read port's ``req`` is high while one of its
    users runs.

    Members: none of its own (it connects the members of the components it is given).

    Latency and throughput: pure multiplexing, no registers: each user sees the banks' own latency.

    Flattened (``add_to`` adds statements to the parent module), so the design's Verilog is the same
    as before the top was split into components.

    Parameters (keyword-only)
    ----------
    banks : MembraneBanks
    clear_value : int
        What the clear sweep writes (the initial TRE charge, or 0).
    clearing : Value
        High during the clear sweep; ``clear_addr`` its address.
    clear_addr : Signal
    engine : IntegrationEngine or None
        The layer's lanes (``None`` for layer 1's membranes with image input: the load integrates into
        the current).
    engines : list of IntegrationEngine or None
        Instead of ``engine``, a graph layer's engines, one per edge (they integrate one at a time: the
        read address is that of the busy one).
    sweep : FireSweep or None
        The layer's fire sweep (``None`` for the output layer).
    read_addr : Value or None
        The readout's address (output layer only), used while ``reading``.
    reading : Value or None
    """

    def __init__(self, *, banks: MembraneBanks, clear_value: int, clearing: Value, clear_addr: Signal,
                 engine: IntegrationEngine | None = None, sweep: FireSweep | None = None,
                 read_addr: Value | None = None, reading: Value | None = None,
                 engines: list[IntegrationEngine] | None = None):
        owner = "BankMux"
        check_type(owner, "banks", banks, MembraneBanks)
        check_int(owner, "clear_value", clear_value)
        check_type(owner, "clearing", clearing, Value)
        check_type(owner, "clear_addr", clear_addr, Signal)
        check_type(owner, "engine", engine, IntegrationEngine, optional=True)
        check_type(owner, "sweep", sweep, FireSweep, optional=True)
        check_type(owner, "read_addr", read_addr, Value, optional=True)
        check_type(owner, "reading", reading, Value, optional=True)
        if (read_addr is None) != (reading is None):
            raise ValueError(f"{owner}: read_addr and reading go together")
        if engines is not None and engine is not None:
            raise ValueError(f"{owner}: give engine or engines, not both")
        engines = list(engines or []) + ([engine] if engine is not None else [])
        for each in engines:
            check_type(owner, "engines", each, IntegrationEngine)
            if len(each.lanes) != len(banks.ports):
                raise ValueError(f"{owner}: {len(each.lanes)} lanes for {len(banks.ports)} banks")
        if sweep is None and not engines:
            raise ValueError(f"{owner}: the banks need a user (engine or sweep)")
        self.banks = banks
        self.clear_value = clear_value
        self.clearing = clearing
        self.clear_addr = clear_addr
        self.engines = engines
        self.sweep = sweep
        self.read_addr = read_addr
        self.reading = reading

    def add_to(self, m: Module) -> None:
        """Add the multiplexers to ``m`` (comb statements, lane by lane)."""
        banks, fire, engines = self.banks, self.sweep, self.engines
        state = not banks.current        # membranes: the sweep reads and updates them
        for lane, (rp, wp) in enumerate(banks.ports):
            units = [engine.lanes[lane] for engine in engines]
            for unit in units:
                m.d.comb += unit.rd_data.eq(rp.data)
            # read address
            rd = units[0].rd_addr if units else 0
            for engine, unit in zip(engines[1:], units[1:]):
                rd = Mux(engine.busy, unit.rd_addr, rd)
            if fire is not None:
                rd = Mux(fire.busy, fire.rd_addr, rd)
                if state:
                    m.d.comb += fire.v_data[lane].eq(rp.data)
                else:
                    m.d.comb += fire.i_data[lane].eq(rp.data)
            if self.reading is not None:
                rd = Mux(self.reading, self.read_addr, rd)
            m.d.comb += rp.addr.eq(rd)
            if banks.stack is not None:      # who needs the read selects the SPRAM address
                req = fire.busy if fire is not None else 0
                for engine in engines:
                    req = req | engine.busy
                if self.reading is not None:
                    req = req | self.reading
                m.d.comb += rp.req.eq(req)
            # write port
            off = banks.clear_offset
            clear_addr = self.clear_addr
            with m.If(self.clearing):
                m.d.comb += [wp.addr.eq(clear_addr - off if off else clear_addr),
                             wp.data.eq(self.clear_value),
                             wp.en.eq((clear_addr >= off) & (clear_addr < off + banks.depth_used) if off
                                      else clear_addr < banks.depth_used)]
            if fire is not None and state:
                with m.Elif(fire.wr_en):
                    m.d.comb += [wp.addr.eq(fire.wr_addr), wp.data.eq(fire.wr_data[lane]),
                                 wp.en.eq(1)]
            for unit in units:
                with m.Elif(unit.wr_en):
                    m.d.comb += [wp.addr.eq(unit.wr_addr), wp.data.eq(unit.wr_data),
                                 wp.en.eq(1)]
