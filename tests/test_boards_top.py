"""Board top (issue 6): UART framing in Amaranth's simulator, and ``ecc-hw run`` over a pty."""
import io

import numpy as np
import pytest

from ecc_hw.boards import framing, simboard
from ecc_hw.boards.top import BoardTop
from ecc_hw import golden, params
from ecc_hw.cli import main
from ecc_hw.cycle_model import cycles_per_image
from ecc_hw.testing import random_inputs, random_network
from ecc_hw.rtl_gen.plan import make_plan


@pytest.fixture(scope="module")
def net():
    return random_network(3, input_bits=4)


def test_framing_roundtrip():
    image = np.arange(12).reshape(1, 3, 4) % 7
    frame = framing.encode_image(image)
    assert frame[0] == framing.SYNC_IN and int.from_bytes(frame[1:3], "little") == 12
    assert frame[-1] == (sum(frame[1:-1]) & 0xFF)
    payload = bytes([2, 2]) + (5).to_bytes(2, "little", signed=True) + (-7).to_bytes(2, "little", signed=True) \
        + bytes([0]) + (1234).to_bytes(4, "little")
    answer = framing.encode_answer(framing.TYPE_RESULT, payload)
    result = framing.decode_answer(io.BytesIO(b"\x00\x13" + answer).read)
    assert result.prediction == 0 and list(result.membranes) == [5, -7] and result.cycles == 1234
    with pytest.raises(framing.FrameError) as error:
        framing.decode_answer(io.BytesIO(framing.encode_answer(framing.TYPE_ERROR, b"\x02")).read)
    assert error.value.code == framing.ERR_CHECKSUM


def test_board_top_images_and_errors(net):
    """3 images give the golden predictions, membranes and the cycle model's counts; a corrupted
    byte gives a checksum error frame, a lost byte a timeout error frame, a wrong length a length
    error; a good image after them still works."""
    plan = make_plan(net, 2)
    x = random_inputs(net, 3, seed=1)
    gold = golden.run(net, x, record_spikes=True)
    model = cycles_per_image(net, gold, 2, x_q=x)
    corrupt = bytearray(framing.encode_image(x[0]))
    corrupt[7] ^= 0x10
    lost = framing.encode_image(x[1])
    lost = lost[:9] + lost[10:]
    wrong = bytes([framing.SYNC_IN, 3, 0, 1, 2, 3, 6])
    frames = [framing.encode_image(v) for v in x] + [bytes(corrupt), lost, wrong, framing.encode_image(x[2])]
    out = io.BytesIO(simboard.exchange(BoardTop(plan, clocks_per_bit=4, timeout_cycles=200), frames))
    for i in range(3):
        result = framing.decode_answer(out.read)
        assert result.prediction == gold.predictions[i]
        assert np.array_equal(result.membranes, gold.output_membrane[i])
        assert result.cycles == model[i]
    for code in (framing.ERR_CHECKSUM, framing.ERR_TIMEOUT, framing.ERR_LENGTH):
        with pytest.raises(framing.FrameError) as error:
            framing.decode_answer(out.read)
        assert error.value.code == code
    assert framing.decode_answer(out.read).prediction == gold.predictions[2]


def test_run_command_against_simulated_board(net, tmp_path, capsys):
    pytest.importorskip("serial")
    folder = tmp_path / "net"
    params.save(net, folder)
    x_q = random_inputs(net, 3, seed=5)
    gold = golden.run(net, x_q)
    # the data file holds x such that quantize_input gives x_q back (lambda_0 = 1)
    x = x_q / net.input_full_scale
    np.savez(tmp_path / "data.npz", x=x, y=gold.predictions)
    plan = make_plan(net, 2)
    with simboard.SimBoard(BoardTop(plan, clocks_per_bit=4, timeout_cycles=400)) as port:
        status = main(["run", str(folder), "--port", port, "--data", str(tmp_path / "data.npz"),
                       "-n", "3", "--lanes", "2", "--timeout", "60"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "accuracy 100.00%" in out and "agreement with the golden model 100.00%" in out
    assert "membranes identical" in out and "cycles = model" in out


def test_board_top_refuses_event_input():
    import gc
    import warnings

    from ecc_hw.testing import random_event_network
    from ecc_hw.rtl_gen.errors import HardwareError

    with warnings.catch_warnings():          # the half-built top is never elaborated: no warning for it
        warnings.simplefilter("ignore")
        with pytest.raises(HardwareError, match="the UART framing carries images; event input runs in"):
            BoardTop(make_plan(random_event_network(3), 2), clocks_per_bit=4)
        gc.collect()
