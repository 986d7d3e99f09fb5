"""The board top: the accelerator behind the framed UART link of :mod:`boards.framing`.

``BoardTop`` is platform-independent (ports ``rx``, ``tx``, LEDs) so it simulates as is; the
board wrappers in :mod:`boards.targets` add the PLL, reset button and pins.

Data path: received pixels go to an image buffer (block RAM, one byte per pixel); only a frame
whose length and checksum are right is fed to the accelerator, so a corrupted image never yields
a class. The accelerator is ``rtl_gen.top.EccSnn`` for a chain's plan and ``rtl_gen.graph_top.EccGraphSnn``
for a graph's (``GraphPlan``); both take the pixels channel-major (c, y, x), which is the order the frame
carries them in, whatever the model's own input layout (NHWC, (N, C, L), (N, F)). The result stream
is sent as it comes (the accelerator waits for the UART).
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ecc_hw.rtl_gen.errors import HardwareError
from ecc_hw.rtl_gen.plan import HardwarePlan, bits_for, pow2_depth
from ecc_hw.rtl_gen.top import EccSnn

from . import framing
from .uart import UartRx, UartTx


def accelerator(plan):
    """The accelerator of ``plan``: ``EccGraphSnn`` for a graph network's plan, else ``EccSnn``."""
    from ecc_hw.rtl_gen.graph_plan import GraphPlan
    if isinstance(plan, GraphPlan):
        from ecc_hw.rtl_gen.graph_top import EccGraphSnn
        return EccGraphSnn(plan)
    return EccSnn(plan)


class BoardTop(wiring.Component):
    """Members: ``rx`` (In, idle high), ``tx`` (Out), ``class_leds`` (Out 8, last class),
    ``error_led`` (Out, last frame was rejected), ``busy_led`` (Out, an image is in flight)."""

    def __init__(self, plan: HardwarePlan, clocks_per_bit: int, timeout_cycles: int | None = None):
        if plan.events:
            raise HardwareError("the UART framing carries images; event input runs in simulation only "
                                "(ecc-hw verify)")
        c, h, w = plan.input_shape
        if c * h * w > framing.MAX_PIXELS:
            raise HardwareError(f"the UART frame carries at most {framing.MAX_PIXELS:,} pixels; this network "
                                f"has {c * h * w:,} ({c}x{h}x{w})")
        if plan.input_bits > 8:
            raise HardwareError(f"the UART framing carries 8-bit pixels; this network has "
                                f"{plan.input_bits}-bit inputs")
        self.plan = plan
        self.clocks_per_bit = int(clocks_per_bit)
        self.timeout_cycles = int(timeout_cycles or framing.TIMEOUT_BIT_TIMES * clocks_per_bit)
        c, h, w = plan.input_shape
        self.pixels = c * h * w
        self.classes = plan.num_classes
        self.mb = framing.membrane_bytes(plan.layers[-1].membrane_width)
        self.result_length = 2 + self.classes * self.mb + 5
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "class_leds": Out(8),
                          "error_led": Out(1), "busy_led": Out(1)})

    def elaborate(self, platform):
        m = Module()
        plan = self.plan
        m.submodules.ecc = ecc = accelerator(plan)
        m.submodules.uart_rx = urx = UartRx(self.clocks_per_bit)
        m.submodules.uart_tx = utx = UartTx(self.clocks_per_bit)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]

        npix = self.pixels
        m.submodules.image = image = Memory(shape=8, depth=pow2_depth(npix), init=[])
        wp = image.write_port()
        rp = image.read_port()

        byte = urx.data.payload
        got = urx.data.valid
        count = Signal(bits_for(npix))
        length = Signal(16)
        check = Signal(8)
        idle = Signal(bits_for(self.timeout_cycles))
        error_code = Signal(2)
        error_req = Signal()
        start = Signal()              # pulse: a good frame is in the buffer
        feeding = Signal()
        m.d.sync += [error_req.eq(0), start.eq(0)]

        with m.If(got):
            m.d.sync += idle.eq(0)
        with m.Elif(idle != self.timeout_cycles):
            m.d.sync += idle.eq(idle + 1)
        timed_out = ~got & (idle == self.timeout_cycles)

        def fail(code, next_state):
            m.d.sync += [error_code.eq(code), error_req.eq(1)]
            m.next = next_state

        m.d.comb += [wp.addr.eq(count), wp.data.eq(byte)]
        with m.FSM(name="rx_state"):
            with m.State("HUNT"):
                with m.If(got & (byte == framing.SYNC_IN) & ~feeding):
                    m.d.sync += [check.eq(0), count.eq(0)]
                    m.next = "LEN0"
            with m.State("LEN0"):
                with m.If(got):
                    m.d.sync += [length[:8].eq(byte), check.eq(byte)]
                    m.next = "LEN1"
                with m.Elif(timed_out):
                    fail(framing.ERR_TIMEOUT, "HUNT")
            with m.State("LEN1"):
                with m.If(got):
                    m.d.sync += check.eq(check + byte)
                    with m.If((length[:8] == (npix & 0xFF)) & (byte == (npix >> 8))):
                        m.next = "PIXELS"
                    with m.Else():
                        fail(framing.ERR_LENGTH, "DRAIN")
                with m.Elif(timed_out):
                    fail(framing.ERR_TIMEOUT, "HUNT")
            with m.State("PIXELS"):
                with m.If(got):
                    m.d.comb += wp.en.eq(1)
                    m.d.sync += [check.eq(check + byte), count.eq(count + 1)]
                    with m.If(count == npix - 1):
                        m.next = "CHECK"
                with m.Elif(timed_out):
                    fail(framing.ERR_TIMEOUT, "HUNT")
            with m.State("CHECK"):
                with m.If(got):
                    with m.If(byte == check):
                        m.d.sync += start.eq(1)
                    with m.Else():
                        fail(framing.ERR_CHECKSUM, "HUNT")
                    m.next = "HUNT"
                with m.Elif(timed_out):
                    fail(framing.ERR_TIMEOUT, "HUNT")
            with m.State("DRAIN"):
                with m.If(timed_out):
                    m.next = "HUNT"

        # --- feed the image to the accelerator (read port registered: address one cycle ahead)
        addr = Signal(bits_for(npix))
        fire = ecc.pixels.valid & ecc.pixels.ready
        m.d.comb += [rp.addr.eq(addr + fire), ecc.pixels.payload.eq(rp.data[:plan.input_bits])]
        cycles = Signal(32)
        counting = Signal()
        with m.FSM(name="feed_state"):
            with m.State("IDLE"):
                m.d.comb += rp.addr.eq(0)
                with m.If(start):
                    m.d.sync += [addr.eq(0), feeding.eq(1)]
                    m.next = "FEED"
            with m.State("FEED"):
                m.d.comb += ecc.pixels.valid.eq(1)
                with m.If(fire):
                    m.d.sync += addr.eq(addr + 1)
                    with m.If(addr == npix - 1):
                        m.d.sync += feeding.eq(0)
                        m.next = "IDLE"
        # cycles as the cycle model counts them: the clear phase (done while waiting) + the rest,
        # without the cycles where the UART holds the result stream
        with m.If(start):
            m.d.sync += [cycles.eq(plan.clear_depth), counting.eq(1)]
        with m.Elif(counting & ~(ecc.result.valid & ~ecc.result.ready)):
            m.d.sync += cycles.eq(cycles + 1)
        with m.If(ecc.result.valid & ecc.result.ready & ecc.result.payload.is_class):
            m.d.sync += counting.eq(0)

        # --- transmitter: error frames and result frames
        res = ecc.result.payload
        value = Signal(self.mb * 8)
        m.d.comb += value.eq(res.value.as_signed())
        sum_out = Signal(8)
        k = Signal(range(max(8, self.mb + 1)))
        tx_byte = Signal(8)
        send = Signal()
        m.d.comb += [utx.data.payload.eq(tx_byte), utx.data.valid.eq(send)]
        accepted = send & utx.data.ready

        def put(data, next_state=None, add=True):
            m.d.comb += [tx_byte.eq(data), send.eq(1)]
            with m.If(accepted):
                if add:
                    m.d.sync += sum_out.eq(sum_out + data)
                if next_state is not None:
                    m.next = next_state
            return accepted

        err_latched = Signal(2)
        pending_err = Signal()
        with m.If(error_req):
            m.d.sync += [pending_err.eq(1), err_latched.eq(error_code), self.error_led.eq(1)]
        with m.If(start):
            m.d.sync += self.error_led.eq(0)
        n_result = self.result_length
        with m.FSM(name="tx_state"):
            with m.State("IDLE"):
                with m.If(pending_err):
                    m.d.sync += [pending_err.eq(0), sum_out.eq(0)]
                    m.next = "E_SYNC"
                with m.Elif(ecc.result.valid):
                    m.d.sync += sum_out.eq(0)
                    m.next = "R_SYNC"
            with m.State("E_SYNC"):
                put(framing.SYNC_OUT, "E_TYPE", add=False)
            with m.State("E_TYPE"):
                put(framing.TYPE_ERROR, "E_LEN0")
            with m.State("E_LEN0"):
                put(1, "E_LEN1")
            with m.State("E_LEN1"):
                put(0, "E_CODE")
            with m.State("E_CODE"):
                put(err_latched, "CHK")
            with m.State("CHK"):
                put(sum_out, "IDLE", add=False)
            with m.State("R_SYNC"):
                put(framing.SYNC_OUT, "R_TYPE", add=False)
            with m.State("R_TYPE"):
                put(framing.TYPE_RESULT, "R_LEN0")
            with m.State("R_LEN0"):
                put(n_result & 0xFF, "R_LEN1")
            with m.State("R_LEN1"):
                put(n_result >> 8, "R_CLASSES")
            with m.State("R_CLASSES"):
                put(self.classes, "R_MB")
            with m.State("R_MB"):
                m.d.sync += k.eq(0)
                put(self.mb, "R_WORD")
            with m.State("R_WORD"):
                with m.If(ecc.result.valid):
                    with m.If(res.is_class):
                        with m.If(put(res.index)):
                            m.d.comb += ecc.result.ready.eq(1)
                            m.d.sync += [self.class_leds.eq(res.index), k.eq(0)]
                            m.next = "R_CYCLES"
                    with m.Else():
                        with m.If(put(value.word_select(k, 8))):
                            m.d.sync += k.eq(k + 1)
                            with m.If(k == self.mb - 1):
                                m.d.sync += k.eq(0)
                                m.d.comb += ecc.result.ready.eq(1)
            with m.State("R_CYCLES"):
                with m.If(put(cycles.word_select(k[:2], 8))):
                    m.d.sync += k.eq(k + 1)
                    with m.If(k == 3):
                        m.next = "CHK"
        m.d.comb += self.busy_led.eq(feeding | counting)
        return m
