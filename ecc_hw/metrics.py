"""Operation counts and energy (docs/arithmetic.md section 4, paper equations 13 and 14)."""
from __future__ import annotations

from dataclasses import dataclass

from .params import NetworkParams
from .variants import InputKind

E_MAC_PJ = 4.6  # 45 nm, 32-bit float multiply-accumulate (Horowitz, ISSCC 2014)
E_AC_PJ = 0.9   # 45 nm, 32-bit float add


@dataclass(frozen=True)
class EnergyModel:
    """Energy per operation in picojoules."""

    e_mac_pj: float = E_MAC_PJ
    e_ac_pj: float = E_AC_PJ


def macs_per_image(params: NetworkParams) -> int:
    """CNN MACs: sum over layers of nominal fan-in x neurons (pooling adds not counted)."""
    return sum(layer.nominal_fan_in * layer.neurons for layer in params.layers)


def first_layer_macs_per_image(params: NetworkParams) -> int:
    """The SNN's constant first-layer current, computed once per image (none with event input)."""
    if getattr(params, "input_kind", InputKind.IMAGE) == InputKind.EVENTS:
        return 0
    first = params.layers[0]
    return first.nominal_fan_in * first.neurons


def paper_ops_per_image(params: NetworkParams) -> int:
    """Equation 13: sum of (2 x fan-in + 1) x neurons."""
    return sum((2 * layer.nominal_fan_in + 1) * layer.neurons for layer in params.layers)


def spiking_neurons(params: NetworkParams) -> int:
    """Neurons of layers 1..N-1 (each is swept once per step)."""
    return sum(layer.neurons for layer in params.spiking_layers)


def energy_from_counts(first_layer_macs: float, macs: float, synops_per_image: float,
                       model: EnergyModel = EnergyModel()) -> dict:
    """E_snn = E_mac * first-layer MACs + E_ac * SynOps, E_cnn = E_mac * MACs, in microjoules."""
    snn = (model.e_mac_pj * first_layer_macs + model.e_ac_pj * synops_per_image) * 1e-6
    cnn = model.e_mac_pj * macs * 1e-6
    return {"snn_uj": snn, "cnn_uj": cnn, "ratio": cnn / snn if snn else float("inf")}


def energy_uj(params: NetworkParams, synops_per_image: float, model: EnergyModel = EnergyModel()) -> dict:
    """:func:`energy_from_counts` with the chain's first-layer MACs and MACs."""
    return energy_from_counts(first_layer_macs_per_image(params), macs_per_image(params), synops_per_image, model)
