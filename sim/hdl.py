"""The bench's own HDL files and cocotb test modules, found through the installed package ``ecc_hw.sim``.

Everything is looked up with ``importlib.resources`` (never through ``__file__`` or the source tree),
so that a wheel install finds the same files as an editable one. The simulators need real files:
``package_file`` refuses a resource that is not one (a zipped install).
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGE = "ecc_hw.sim"
WRAPPER_FILE = "tb_ecc_snn.v"             # the network bench's source, sink and monitor around ecc_snn
WAIVER_FILE = "verilator_waiver.vlt"      # Verilator lint waivers of the generated Verilog
SPRAM_MODEL_FILE = "sb_spram256ka.v"      # iCE40 SPRAM primitive, for designs generated with memory="spram"
WRAPPER_TOPLEVEL = "tb_ecc_snn"
NETWORK_TB = "network_tb"                 # cocotb test modules of the package (see cocotb_module)
LANE_TB = "lane_tb"


def package_file(name: str) -> Path:
    """The file ``name`` of the package ``ecc_hw.sim`` as a filesystem path."""
    resource = resources.files(PACKAGE) / name
    if not isinstance(resource, Path):
        raise RuntimeError(f"{PACKAGE}/{name} is not a plain file ({resource!r}); install ecc-hw unzipped")
    if not resource.is_file():
        raise FileNotFoundError(f"{PACKAGE}/{name} is missing from the installed package")
    return resource


def cocotb_module(name: str) -> str:
    """The dotted name of the package's cocotb test module ``name`` (checked to be shipped with it)."""
    if not (resources.files(PACKAGE) / f"{name}.py").is_file():
        raise FileNotFoundError(f"{PACKAGE}/{name}.py is missing from the installed package")
    return f"{PACKAGE}.{name}"
