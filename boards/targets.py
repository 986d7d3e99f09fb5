"""Board targets: platform, clock (PLL), pins, memory policy and resource limits.

Memory policy: every memory with a registered read port (weights, membranes, first-layer
currents, spike buffers, the UART image buffer) is marked ``ram_style = "block"`` before synthesis
so that Yosys maps it to block RAM, never to LUTs or flip-flops; the build fails if any of them ends
up in logic. Only the fan-out walker's small address tables and the bias ROMs (read asynchronously,
a few hundred bits) are logic. A board lists the bank memories it can use in order of preference;
a build takes the first the network fits (or the one ``--memory`` names). The iCEBreaker prefers
its 30 dual-port block RAMs (full rate) and otherwise puts the membranes, currents and spike
buffers in the UP5K's four single-port SB_SPRAM256KA (instantiated by ``rtl_gen.spram``; the banks
are read in one cycle and written in the next, half the update rate), the weights staying in
block RAM. The ULX3S keeps every bank in dual-port block RAM.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from amaranth.hdl import ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer

from ecc_hw.variants import Memory


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    device: str
    family: str                     # "ice40" | "ecp5"
    board_clock_mhz: float
    default_clock_mhz: float
    baud: int
    nextpnr_args: tuple
    limits: dict                    # resource -> available
    bram_bits: int                  # bits per block RAM
    bram_shapes: tuple              # (depth, width) configurations of one block RAM
    labels: dict = field(default_factory=dict)   # resource -> column label
    memories: tuple = (Memory.BRAM,)     # the banks' memories (rtl_gen.plan.make_plan), in order of preference

    def platform(self):
        if self.name == "icebreaker":
            from amaranth_boards.icebreaker import ICEBreakerPlatform
            platform = ICEBreakerPlatform()
            platform.add_resources(platform.break_off_pmod)     # the snap-off LEDs show the class
            return platform
        from amaranth_boards.ulx3s import ULX3S_85F_Platform
        return ULX3S_85F_Platform()


BOARDS = {
    "icebreaker": Board(
        name="icebreaker", title="iCEBreaker (iCE40 UP5K)", device="iCE40UP5K-SG48", family="ice40",
        board_clock_mhz=12.0, default_clock_mhz=18.0, baud=1_000_000,
        nextpnr_args=("--up5k", "--package", "sg48"),
        limits={"lut": 5280, "ff": 5280, "lc": 5280, "bram": 30, "spram": 4, "dsp": 8},
        bram_bits=4096, bram_shapes=((256, 16), (512, 8), (1024, 4), (2048, 2)),
        labels={"lc": "LC", "bram": "BRAM (4 kbit)", "spram": "SPRAM (256 kbit)", "dsp": "DSP"},
        memories=(Memory.BRAM, Memory.SPRAM)),
    "ulx3s-85f": Board(
        name="ulx3s-85f", title="ULX3S 85F (ECP5 LFE5U-85F)", device="LFE5U-85F-6BG381C", family="ecp5",
        board_clock_mhz=25.0, default_clock_mhz=62.5, baud=1_000_000,
        nextpnr_args=("--85k", "--package", "CABGA381", "--speed", "6"),
        limits={"lut": 83640, "ff": 83640, "bram": 208, "dsp": 156},
        bram_bits=18432, bram_shapes=((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)),
        labels={"bram": "BRAM (DP16KD)", "dsp": "DSP (MULT18)"}),
}


def ice40_pll(fin: float, fout: float) -> dict:
    """SB_PLL40 parameters closest to ``fout`` (MHz), as icepll computes them (SIMPLE feedback)."""
    best = None
    for divr in range(16):
        pfd = fin / (divr + 1)
        if not 10 <= pfd <= 133:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533 <= vco <= 1066:
                continue
            for divq in range(1, 7):
                out = vco / (1 << divq)
                if best is None or abs(out - fout) < abs(best[0] - fout) - 1e-9:
                    best = (out, divr, divf, divq, pfd)
    if best is None:
        raise ValueError(f"no iCE40 PLL setting for {fin} -> {fout} MHz")
    out, divr, divf, divq, pfd = best
    filt = next(i for i, top in enumerate((17, 26, 44, 66, 101, 1e9), start=1) if pfd < top)
    return {"mhz": out, "DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filt}


def ecp5_pll(fin: float, fout: float) -> dict:
    """EHXPLLL parameters closest to ``fout`` (MHz), as ecppll computes them."""
    best = None
    for clki in range(1, 129):
        pfd = fin / clki
        if not 3.125 <= pfd <= 400:
            continue
        for clkfb in range(1, 81):
            out = pfd * clkfb
            for clkop in range(1, 129):
                vco = out * clkop
                if 400 <= vco <= 800:
                    if best is None or abs(out - fout) < abs(best[0] - fout) - 1e-9:
                        best = (out, clki, clkfb, clkop)
                    break
    if best is None:
        raise ValueError(f"no ECP5 PLL setting for {fin} -> {fout} MHz")
    out, clki, clkfb, clkop = best
    return {"mhz": out, "CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop}


class BoardWrapper(Elaboratable):
    """The board top on a real board: PLL (when the clock differs from the board's), power-on and
    button reset (synchronised, held until the PLL locks), UART pins, LEDs."""

    def __init__(self, board: Board, top, clock_mhz: float):
        self.board = board
        self.top = top
        self.clock_mhz = clock_mhz

    def elaborate(self, platform):
        m = Module()
        board = self.board
        m.domains.sync = cd = ClockDomain("sync")
        locked = Signal()
        fin = board.board_clock_mhz
        if abs(self.clock_mhz - fin) < 1e-6:
            clk = platform.request(platform.default_clk, dir="-")
            m.submodules.clk_buf = buf = io.Buffer("i", clk)
            m.d.comb += [cd.clk.eq(buf.i), locked.eq(1)]
        elif board.family == "ice40":
            pll = ice40_pll(fin, self.clock_mhz)
            clk = platform.request(platform.default_clk, dir="-")
            m.submodules.pll = Instance(
                "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE", p_DIVR=pll["DIVR"], p_DIVF=pll["DIVF"],
                p_DIVQ=pll["DIVQ"], p_FILTER_RANGE=pll["FILTER_RANGE"],
                i_PACKAGEPIN=clk.io, i_RESETB=Const(1), i_BYPASS=Const(0),
                o_PLLOUTGLOBAL=cd.clk, o_LOCK=locked)
        else:
            pll = ecp5_pll(fin, self.clock_mhz)
            clk = platform.request(platform.default_clk, dir="-")
            m.submodules.clk_buf = buf = io.Buffer("i", clk)
            clkop = Signal()
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=str(int(fin)), a_FREQUENCY_PIN_CLKOP=f"{pll['mhz']:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
                p_CLKI_DIV=pll["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=pll["CLKOP_DIV"],
                p_CLKOP_CPHASE=(pll["CLKOP_DIV"] - 1) // 2, p_CLKOP_FPHASE=0,
                p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=pll["CLKFB_DIV"],
                i_RST=Const(0), i_STDBY=Const(0), i_CLKI=buf.i, o_CLKOP=clkop, i_CLKFB=clkop,
                i_PHASESEL0=Const(0), i_PHASESEL1=Const(0), i_PHASEDIR=Const(1), i_PHASESTEP=Const(1),
                i_PHASELOADREG=Const(1), i_PLLWAKESYNC=Const(0), i_ENCLKOP=Const(0), o_LOCK=locked)
            m.d.comb += cd.clk.eq(clkop)

        # reset: power-on delay (iCE40 block RAMs need a few us after configuration), PLL lock, button
        if board.name == "icebreaker":
            button = platform.request("button", 0).i
        else:
            button = platform.request("button_fire", 0).i
        pressed = Signal()
        m.domains.por = ClockDomain("por", reset_less=True)     # the reset logic's own domain
        m.d.comb += ClockSignal("por").eq(cd.clk)
        m.submodules.button_sync = FFSynchronizer(button | ~locked, pressed, o_domain="por", init=1)
        por = Signal(12, init=0)
        with m.If(pressed):
            m.d.por += por.eq(0)
        with m.Elif(~por.all()):
            m.d.por += por.eq(por + 1)
        m.d.comb += cd.rst.eq(~por.all())

        top = self.top
        m.submodules.top = top
        uart = platform.request("uart", 0)
        m.d.comb += [top.rx.eq(uart.rx.i), uart.tx.o.eq(top.tx)]
        if board.name == "icebreaker":
            m.d.comb += [platform.request("led_r", 0).o.eq(top.error_led),
                         platform.request("led_g", 0).o.eq(top.busy_led)]
            for bit, number in enumerate((2, 3, 4, 5, 6)):      # the snap-off PMOD's LEDs
                m.d.comb += platform.request("led", number).o.eq(top.class_leds[bit])
        else:
            for bit in range(7):
                m.d.comb += platform.request("led", bit).o.eq(top.class_leds[bit])
            m.d.comb += platform.request("led", 7).o.eq(top.error_led)
        return m
