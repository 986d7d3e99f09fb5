"""Graph designs with SPRAM banks (``memory="spram"``, docs/graph_hardware.md): every layer's membranes (and the
input layer's current) in the state stack, every layer's spike buffer, rewound for each consumer, in the spike
stack, the max-pool nodes' memories in block RAM. On Icarus with ``sim/sb_spram256ka.v`` against the graph
golden model and ``ecc_hw.graph.spram_cycle_model`` under random idle gaps and back-pressure (a residual fixture
whose sources replay to several consumers, a max-pool fixture, an MLP at P = 8, radix, random DAGs); the
layout, the manifest, deterministic Verilog, the fit prediction, the one-line refusal of a network too deep
for one SPRAM, the generate and verify commands, and mutations the bench must catch (an SPRAM model without its
write mask, the block-RAM cycle model)."""
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_graph_hw import GRAPH_FIXTURES, STIMULUS, assert_verified, bench_key, fashion, fixture
from test_graph_property import BLOCKS, random_network

from ecc_hw.boards.fit import predict, sync_memories
from ecc_hw.boards.targets import BOARDS
from ecc_hw.errors import UserError
from ecc_hw.graph.calibrate import calibrate
from ecc_hw.graph.pipeline import convert_graph
from ecc_hw.graph.quantise import quantise_graph
from ecc_hw.graph.spram_cycle_model import LAYER_REWIND_LATENCY, spram_clear_cycles
from ecc_hw.graph.store import GraphParams
from ecc_hw.rtl_gen.errors import HardwareError
from ecc_hw.rtl_gen.graph_plan import make_graph_plan
from ecc_hw.rtl_gen.spike_buffer import SpikeBuffer
from ecc_hw.sim.check import VerificationFailed, expected_for
from ecc_hw.sim.testing import need_simulator
from ecc_hw.sim.verify import verify
from ecc_hw.variants import Memory, TreMode

SPRAM = Memory.SPRAM


@pytest.mark.parametrize("name, lanes, options", [
    ("resnet_legacy", 4, {}), ("maxpool_legacy", 2, {"tre_mode": TreMode.INITIAL}), ("mlp_legacy", 8, {})])
def test_spram_graphs_on_icarus(name, lanes, options, bench_cache):
    params, rows = fixture(name, 4, **options)
    bench = bench_cache.get(params, "icarus", lanes, 4, bench_key(name, options) + "-spram", memory=SPRAM)
    manifest = bench.build.design.manifest
    assert manifest["memory"] == "spram" and manifest["cycle_model"]["issue_interval"] == 2
    report = verify(params, rows[:2], "icarus", lanes, 4, STIMULUS, bench=bench)
    assert_verified(report)
    assert report["memory"] == "spram"
    assert sum(report["input_stall_cycles"]) > 0 and sum(report["output_stall_cycles"]) > 0


def test_spram_costs_cycles_against_block_ram():
    """Half-rate banks and no sweep overlap: the residual fixture takes about twice its block-RAM cycles."""
    params, rows = fixture("resnet_legacy", 4)
    bram = expected_for(params, rows, 4, 4, Memory.BRAM).cycles
    spram = expected_for(params, rows, 4, 4, SPRAM).cycles
    assert np.all(spram > 1.9 * bram) and np.all(spram < 2.5 * bram)


@pytest.mark.parametrize("name, lanes, timesteps", [("maxpool_legacy", 2, 3), ("resnet_legacy", 4, 2)])
def test_radix_graphs_with_spram_on_icarus(name, lanes, timesteps, bench_cache):
    """Binary coding (each source fires its T bits before its consumers) with SPRAM banks: max-pool nodes'
    tied-set units, and layers replayed to several consumers."""
    from ecc_hw.graph.radix import quantise_radix_graph

    x = np.load(GRAPH_FIXTURES / f"{name}.npz")["x"].astype(np.float64)
    network = convert_graph(GRAPH_FIXTURES / f"{name}.onnx")
    graph = quantise_radix_graph(network, calibrate(network, x), 8, 8, timesteps)
    params = GraphParams(graph, method="radix", timesteps=timesteps)
    bench = bench_cache.get(params, "icarus", lanes, timesteps, f"graph-{name}-radix-spram", memory=SPRAM)
    assert_verified(verify(params, graph.quantise_input(x[:2]), "icarus", lanes, timesteps, STIMULUS, bench=bench))


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), size=st.integers(3, 5), blocks=st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=3),
       lanes=st.sampled_from([1, 2, 4]), timesteps=st.integers(1, 3))
def test_random_dags_with_spram_on_icarus(tmp_path, data, size, blocks, lanes, timesteps, bench_cache):
    network = random_network(tmp_path, data, size, blocks)
    x = np.random.default_rng(data.draw(st.integers(0, 9))).normal(size=(6, 2, size, size))
    try:
        graph = quantise_graph(network, calibrate(network, x, "percentile", 99.0), weight_bits=6, input_bits=6)
    except UserError:  # a dead layer or all-zero weights on random data
        assume(False)
    params = GraphParams(graph, timesteps=timesteps)
    rows = graph.quantise_input(x[:2])
    bench = bench_cache.get(params, "icarus", lanes, timesteps, f"dag-spram-{id(params)}", memory=SPRAM)
    assert_verified(verify(params, rows, "icarus", lanes, timesteps, STIMULUS, bench=bench))


def test_the_stacks_hold_every_layer_and_the_pools_stay_in_block_ram():
    params, _ = fixture("maxpool_legacy", 4)
    plan = make_graph_plan(params, 2, 4, SPRAM)
    state, spikes = plan.spram.state, plan.spram.spikes
    assert [r.name for r in state.regions] == [f"layer{layer.number}" for layer in plan.layers]
    assert [r.name for r in spikes.regions] == [f"layer{layer.number}_spike_buffer" for layer in plan.spiking]
    assert state.depth == sum(layer.layer.target.depth_used for layer in plan.layers)
    assert plan.clear_depth == spram_clear_cycles(params.graph, 2) >= state.depth
    assert {f.name for f in state.region("layer1").fields} == {"layer1_membrane", "layer1_current"}
    kinds = {m["name"]: m["kind"] for m in plan.memories()}
    assert kinds["layer1_membrane"] == kinds["layer1_current"] == kinds["layer2_spike_buffer"] == "spram"
    assert kinds["pool1_counts"] == kinds["pool1_maxima"] == kinds["pool1_spike_buffer"] == "ram"
    assert plan.issue_interval == 2 and make_graph_plan(params, 2, 4).spram is None


def test_regenerated_spram_verilog_is_byte_identical_and_the_manifest_counts_the_blocks(tmp_path):
    from ecc_hw.rtl_gen.generate import generate

    params, _ = fixture("resnet_legacy", 4)
    first = generate(params, tmp_path / "a", 4, True, memory=SPRAM)
    generate(params, tmp_path / "b", 4, True, memory=SPRAM)
    for name in ("ecc_snn.v", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    text = (tmp_path / "a" / "ecc_snn.v").read_text()
    plan = make_graph_plan(params, 4, 4, SPRAM)
    assert first["memory"] == "spram" and first["spram_blocks"] == plan.spram.blocks > 0
    assert len(re.findall(r"^\s*SB_SPRAM256KA\s", text, re.M)) == first["spram_blocks"]
    constants = first["cycle_model"]
    assert constants["issue_interval"] == 2 and constants["clear_cycles"] == spram_clear_cycles(params.graph, 4)
    assert constants["layer_rewind_latency"] == LAYER_REWIND_LATENCY == SpikeBuffer.SINGLE_PORT_REWIND_LATENCY
    bram = generate(params, tmp_path / "c", 4, True)
    assert bram["spram_blocks"] == 0 and "SB_SPRAM256KA" not in (tmp_path / "c" / "ecc_snn.v").read_text()


def test_the_fit_prediction_counts_the_spram_blocks():
    params, _ = fixture("densenet_legacy", 4)
    plan = make_graph_plan(params, 1, 4, SPRAM)
    prediction = predict(BOARDS["icebreaker"], plan)
    assert prediction["spram"] == plan.spram.blocks and prediction["spram_bits"] == plan.spram.bits
    assert set(prediction["spram_stacks"]) == {"state", "spikes"}
    assert not any(m["name"].endswith(("_membrane", "_current", "_spike_buffer")) and m["name"].startswith("layer")
                   for m in sync_memories(plan, 1))


def test_a_network_too_deep_for_one_spram_is_refused_in_one_line():
    params, _ = fashion("resnet", 4)
    with pytest.raises(HardwareError) as info:
        make_graph_plan(params, 1, 4, SPRAM)
    message = str(info.value)
    assert "\n" not in message
    assert re.fullmatch(r"memory spram: the state stack needs 28,234 of 16,384 words: layer 3's membranes \(layer3\) "
                        r"need 6,272 words from word 12,544, 3,840 are left \(fits at 2 lanes; or --memory bram\)",
                        message), message
    assert make_graph_plan(params, 2, 4, SPRAM).spram.state.depth <= 16384


def test_spram_graph_bench_fails_with_the_block_ram_cycle_model(bench_cache):
    """Mutation: expecting the block-RAM schedule (sweeps overlapped, full-rate banks) must fail the bench."""
    params, rows = fixture("mlp_legacy", 4)
    bench = bench_cache.get(params, "icarus", 8, 4, bench_key("mlp_legacy", {}) + "-spram", memory=SPRAM)

    def block_ram_cycles(expected):
        expected.cycles = expected_for(params, rows[:2], 8, 4, Memory.BRAM).cycles

    with pytest.raises(VerificationFailed, match="cycles"):
        verify(params, rows[:2], "icarus", 8, 4, STIMULUS, bench=bench, waves_on_mismatch=False,
               mutate=block_ram_cycles)


def test_spram_graph_bench_fails_when_the_write_mask_is_ignored(tmp_path, monkeypatch):
    """Mutation: an SPRAM model that writes whole words clobbers the banks beside the one written (the
    input layer's membranes and currents share a column of the state stack)."""
    from ecc_hw.sim import network_bench

    text = network_bench.SPRAM_MODEL.read_text()
    broken = text.replace("if (MASKWREN[0]) words[ADDRESS][3:0]   <= DATAIN[3:0];", "words[ADDRESS] <= DATAIN;")
    assert broken != text
    (tmp_path / "sb_spram256ka.v").write_text(broken)
    monkeypatch.setattr(network_bench, "SPRAM_MODEL", tmp_path / "sb_spram256ka.v")
    need_simulator("icarus")
    params, rows = fixture("input_norm_legacy", 4)
    fields = make_graph_plan(params, 1, 4, SPRAM).spram.state.region("layer1").fields
    columns = {name: {c for f in fields if f.name == name for c in range(f.bit // 16, (f.bit + f.width - 1) // 16 + 1)}
               for name in ("layer1_membrane", "layer1_current")}
    assert columns["layer1_membrane"] & columns["layer1_current"]     # the two share an SPRAM
    with pytest.raises(VerificationFailed):
        verify(params, rows[:2], "icarus", 1, 4, STIMULUS, tmp_path / "build", waves_on_mismatch=False,
               memory=SPRAM)


def test_generate_and_verify_commands_take_spram_for_a_graph_folder(tmp_path, capsys, sim_build_root):
    from ecc_hw.cli import main
    from ecc_hw.networks import save_network

    params, _ = fixture("mlp_legacy", 4)
    save_network(params, tmp_path / "net")
    assert main(["generate", str(tmp_path / "net"), "-o", str(tmp_path / "rtl"), "--lanes", "4",
                 "--memory", "spram"]) in (None, 0)
    assert "SB_SPRAM256KA" in (tmp_path / "rtl" / "ecc_snn.v").read_text()
    status = main(["verify", str(tmp_path / "net"), "--data", str(GRAPH_FIXTURES / "mlp_legacy.npz"), "-n", "2",
                   "--sim", "icarus", "--lanes", "4", "--memory", "spram", "--build-dir", str(sim_build_root)])
    assert status in (None, 0)
    out = capsys.readouterr().out
    assert "icarus: 2 images, P=4, T=4: 0 spike, 0 prediction, 0 membrane, 0 cycle mismatches" in out
