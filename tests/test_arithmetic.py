"""ecc_hw.arithmetic against plain reference loops (docs/arithmetic.md 1.4-3), the variants, and the layering."""
import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecc_hw import arithmetic
from ecc_hw.errors import UserError
from ecc_hw.params import NetworkParams, QuantLayer
from ecc_hw.passes import FloatLayer
from ecc_hw.variants import Coding, InputKind, Memory, Method, TreMode

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------------ TRE

def tre_loop(charge, timesteps):
    """e(t) = floor(R t / T) - floor(R (t-1) / T), one step at a time."""
    return [charge * t // timesteps - charge * (t - 1) // timesteps for t in range(1, timesteps + 1)]


@given(charge=st.integers(0, 100_000), timesteps=st.integers(1, 300))
def test_tre_spread_and_counter_forms_equal_the_definition(charge, timesteps):
    spread = arithmetic.tre_schedule(charge, timesteps).tolist()
    assert spread == tre_loop(charge, timesteps)
    assert arithmetic.tre_schedule_counter(charge, timesteps).tolist() == spread
    quotient, remainder = arithmetic.tre_counter_constants(charge, timesteps)
    assert quotient * timesteps + remainder == charge and 0 <= remainder < timesteps
    assert sum(spread) == charge
    assert min(spread) >= charge // timesteps and max(spread) <= charge // timesteps + 1


def test_tre_schedule_hand_example():
    # R = 5 over T = 4: floor(5t/4) = 1, 2, 3, 5 -> charges 1, 1, 1, 2.
    assert arithmetic.tre_schedule(5, 4).tolist() == [1, 1, 1, 2]


@given(charge=st.integers(0, 10_000), timesteps=st.integers(1, 64), mode=st.sampled_from(list(TreMode)))
def test_both_tre_modes_add_r_in_integers_and_in_floats(charge, timesteps, mode):
    steps, initial = arithmetic.integer_tre_charges(mode, charge, timesteps)
    assert len(steps) == timesteps and int(steps.sum()) + initial == charge
    assert (initial == 0) == (mode is TreMode.SPREAD or charge == 0)
    float_steps, float_initial = arithmetic.float_tre_charges(mode, charge / 8, timesteps)
    assert math.isclose(float(float_steps.sum()) + float_initial, charge / 8, rel_tol=1e-12, abs_tol=1e-12)
    if mode is TreMode.SPREAD:
        assert np.all(float_steps == charge / 8 / timesteps)


# ---------------------------------------------------------------------------------------------------- input

def test_full_scales():
    assert [arithmetic.input_full_scale(bits, False) for bits in (1, 8, 16)] == [1, 255, 65535]
    assert [arithmetic.input_full_scale(bits, True) for bits in (2, 8, 16)] == [1, 127, 32767]
    assert [arithmetic.weight_full_scale(bits) for bits in (2, 8, 16)] == [1, 127, 32767]


class Params:
    """The attributes quantize_input reads."""

    def __init__(self, lambda_0, bits, signed):
        self.lambdas, self.input_signed = [lambda_0], signed
        self.input_full_scale = arithmetic.input_full_scale(bits, signed)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(-600, 600, allow_nan=False), min_size=1, max_size=20),
       lambda_0=st.floats(0.01, 300), bits=st.integers(2, 16), signed=st.booleans())
def test_input_quantisation_equals_a_loop_with_half_to_even(values, lambda_0, bits, signed):
    params = Params(lambda_0, bits, signed)
    x = np.array(values, dtype=np.float64).reshape(len(values), 1, 1, 1)
    low = -1.0 if signed else 0.0
    expected = [round(min(max(v / lambda_0, low), 1.0) * params.input_full_scale) for v in values]  # Python: to even
    assert arithmetic.quantize_input(params, x).reshape(-1).tolist() == expected


def test_first_layer_unit():
    assert arithmetic.first_layer_unit(255, InputKind.IMAGE, 0, 32) == 255
    assert arithmetic.first_layer_unit(255, InputKind.EVENTS, 16, 32) == 0.5


# ---------------------------------------------------------------------------------------- CN and integers

def dense_layers(rng, sizes):
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(FloatLayer("dense", f"fc{index + 1}", (fan_in, 1, 1), (fan_out, 1, 1),
                                 rng.normal(size=(fan_out, fan_in)), rng.normal(size=fan_out), nominal_fan_in=fan_in,
                                 relu=index < len(sizes) - 2))
    return layers


def rate_loop(layers, lambdas, unit, weight_bits, kappa, eta):
    """docs/arithmetic.md 1.4, 2.3, 2.4 element by element in Python floats (round(): half to even)."""
    wmax = 2 ** (weight_bits - 1) - 1
    out = []
    for n, layer in enumerate(layers):
        scale = kappa / lambdas[n + 1]
        weight = [[scale * lambdas[n] * w for w in row] for row in layer.weight.tolist()]
        bias = [scale * b for b in layer.bias.tolist()]
        gain = wmax / max(abs(w) for row in weight for w in row)
        u = unit if n == 0 else 1
        spiking = n < len(layers) - 1
        theta = max(1, round(gain * kappa * u)) if spiking else None
        out.append(([[round(gain * w) for w in row] for row in weight], [round(gain * b * u) for b in bias],
                    theta, round(eta * theta) if spiking else None, gain))
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), depth=st.integers(2, 4), weight_bits=st.integers(2, 16),
       kappa=st.floats(0.5, 1000), eta=st.floats(0, 1), unit=st.sampled_from([1, 255, 127, 0.5]))
def test_rate_integers_equal_a_plain_loop(seed, depth, weight_bits, kappa, eta, unit):
    rng = np.random.default_rng(seed)
    layers = dense_layers(rng, [int(v) for v in rng.integers(1, 6, size=depth + 1)])
    lambdas = [float(v) for v in rng.uniform(0.1, 50, size=depth + 1)]
    integers = arithmetic.rate_layer_integers(layers, lambdas, unit, weight_bits, kappa, eta)
    for ours, (weight, bias, theta, charge, gain) in zip(integers, rate_loop(layers, lambdas, unit, weight_bits,
                                                                              kappa, eta)):
        assert ours.weight.tolist() == weight and ours.bias.tolist() == bias
        assert (ours.threshold, ours.tre_charge, ours.gain) == (theta, charge, gain)


def radix_loop(layers, lambdas, full_scale, weight_bits, timesteps):
    """docs/methods.md radix quantisation element by element."""
    wmax, levels = 2 ** (weight_bits - 1) - 1, 2 ** timesteps
    step = [lambdas[0] / full_scale] + [value / (levels - 1) for value in lambdas[1:-1]]
    out = []
    for n, layer in enumerate(layers):
        spiking = n < len(layers) - 1
        factor = step[n] / step[n + 1] if spiking else step[n]
        weight = [[w * factor for w in row] for row in layer.weight.tolist()]
        gain = wmax / max(abs(w) for row in weight for w in row)
        if spiking:
            gain = float(max(1, math.floor(gain)))
            bias = [round(gain * (b / step[n + 1] + 0.5)) for b in layer.bias.tolist()]
        else:
            bias = [round(gain * b) for b in layer.bias.tolist()]
        out.append(([[round(gain * w) for w in row] for row in weight], bias, int(gain) if spiking else None))
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), depth=st.integers(2, 4), weight_bits=st.integers(2, 16),
       timesteps=st.integers(1, arithmetic.RADIX_MAX_T))
def test_radix_integers_equal_a_plain_loop(seed, depth, weight_bits, timesteps):
    rng = np.random.default_rng(seed)
    layers = dense_layers(rng, [int(v) for v in rng.integers(1, 6, size=depth + 1)])
    lambdas = [255.0] + [float(v) for v in rng.uniform(0.1, 50, size=depth)]
    integers = arithmetic.radix_layer_integers(layers, lambdas, 255, weight_bits, timesteps)
    for ours, (weight, bias, theta) in zip(integers, radix_loop(layers, lambdas, 255, weight_bits, timesteps)):
        assert ours.weight.tolist() == weight and ours.bias.tolist() == bias and ours.threshold == theta
        assert ours.tre_charge == (None if theta is None else 0)


def test_all_zero_layer_and_radix_limits_are_user_errors():
    layers = dense_layers(np.random.default_rng(0), [2, 2, 2])
    layers[1].weight[:] = 0
    with pytest.raises(UserError, match=r"layer 2 \('fc2'\): all weights are zero"):
        arithmetic.rate_layer_integers(layers, [1.0, 1.0, 1.0], 255, 8, 100.0, 0.5)
    with pytest.raises(UserError) as info:
        arithmetic.check_radix_timesteps(arithmetic.RADIX_MAX_T + 1)
    assert info.value.field == "timesteps"
    layers[0].kind = "pool"
    with pytest.raises(UserError) as info:
        arithmetic.radix_layer_integers(layers, [1.0, 1.0, 1.0], 255, 8, 4)
    assert info.value.field == "pool_mode" and "layer 1 ('fc1')" in info.value.message


# ------------------------------------------------------------------------------------------------ bounds

def dense_params(seed, timesteps, method):
    """A random chain of dense layers: every neuron's fan-in is its whole weight row."""
    rng = np.random.default_rng(seed)
    sizes = [int(v) for v in rng.integers(1, 7, size=int(rng.integers(2, 5)))]
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        spiking = index < len(sizes) - 2
        threshold = int(rng.integers(1, 500)) if spiking else None
        layers.append(QuantLayer("dense", (fan_in, 1, 1), (fan_out, 1, 1), rng.integers(-127, 128, (fan_out, fan_in)),
                                 rng.integers(-300, 301, fan_out), threshold,
                                 int(rng.integers(0, threshold + 1)) if spiking else None, nominal_fan_in=fan_in))
    return NetworkParams((sizes[0], 1, 1), 8, bool(rng.integers(2)), 8, timesteps, 0.5, 100.0, layers,
                         [1.0] * len(sizes), method=method)


def largest_current_loop(layer, largest_input):
    """max over neurons i of sum_j |W_ij| m, plus the largest |b_i|."""
    rows = np.abs(layer.weight).tolist()
    return max(sum(row) * largest_input for row in rows) + max(abs(b) for b in layer.bias.tolist())


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), timesteps=st.integers(1, 64))
def test_rate_bounds_equal_a_plain_loop(seed, timesteps):
    params = dense_params(seed, timesteps, Method.ECC)
    zmax, largest = [], params.input_full_scale
    for layer in params.layers:
        zmax.append(largest_current_loop(layer, largest) + (layer.tre_charge // timesteps + 1 if layer.spiking else 0))
        largest = 1
    assert arithmetic.current_bounds(params, timesteps) == zmax
    expected = [timesteps * z + (layer.threshold if layer.spiking else 0) for z, layer in zip(zmax, params.layers)]
    assert arithmetic.membrane_bounds(params, timesteps) == expected


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), timesteps=st.integers(1, arithmetic.RADIX_MAX_T))
def test_radix_bounds_equal_a_plain_loop(seed, timesteps):
    params = dense_params(seed, timesteps, Method.RADIX)
    largest = [params.input_full_scale] + [2 ** timesteps - 1] * (len(params.layers) - 1)
    expected = [largest_current_loop(layer, m) for layer, m in zip(params.layers, largest)]
    assert arithmetic.membrane_bounds(params, timesteps) == expected


# ---------------------------------------------------------------------------------------------- variants

def test_variants_read_write_and_compare_as_their_strings():
    assert Method.ECC == "ecc" and "ecc" == Method.ECC and hash(Method.ECC) == hash("ecc")
    assert str(Memory.SPRAM) == f"{Memory.SPRAM}" == "spram" and f"{TreMode.INITIAL:>8}" == " initial"
    assert json.dumps({"method": Method.RMP, "kind": InputKind.EVENTS}) == '{"method": "rmp", "kind": "events"}'
    assert Method.values() == ("ecc", "wn2017", "rmp", "radix")
    assert Method.RADIX.coding is Coding.BINARY and {m.coding for m in Method if m is not Method.RADIX} == {Coding.RATE}
    with pytest.raises(UserError) as info:
        Memory.parse("dram", "memory")
    assert str(info.value) == "memory: 'dram' is not one of bram, spram"


# ------------------------------------------------------------------------------------------------ layering

def ecc_hw_imports(path: Path) -> set[str]:
    """Every ecc_hw module a file imports, at any depth of the file (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {f"ecc_hw.{a.name}" for a in node.names} if node.module is None else {f"ecc_hw.{node.module}"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ecc_hw"):
            found |= {f"ecc_hw.{a.name}" for a in node.names} if node.module == "ecc_hw" else {node.module}
    return found


def test_core_modules_import_no_cycle():
    modules = {f"ecc_hw.{path.stem}": path for path in (ROOT / "ecc_hw").glob("*.py")}
    graph = {name: ecc_hw_imports(path) & set(modules) - {name} for name, path in modules.items()}
    done, active = set(), []

    def visit(name):
        assert name not in active, f"import cycle: {' -> '.join(active[active.index(name):] + [name])}"
        if name in done:
            return
        active.append(name)
        for other in sorted(graph[name]):
            visit(other)
        active.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_the_hardware_plan_loads_the_arithmetic_not_the_models():
    code = "import sys, ecc_hw.rtl_gen.plan; print(' '.join(sorted(m for m in sys.modules if m.startswith('ecc_hw'))))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(run.stdout.split())
    core = {m for m in loaded if not m.startswith("ecc_hw.rtl_gen")}
    # ecc_hw.manifest: the parameter folder's frame, which ecc_hw.params reads through
    assert core <= {"ecc_hw", "ecc_hw.params", "ecc_hw.manifest", "ecc_hw.arithmetic", "ecc_hw.linear",
                    "ecc_hw.errors", "ecc_hw.atomic", "ecc_hw.variants"}, core
