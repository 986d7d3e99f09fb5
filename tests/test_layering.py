"""The import contract: core <- hardware generator <- verification and boards <- CLI, one way only.

Every module of the four source folders is parsed (not imported), and each import, including those
inside functions, is resolved to the module it names. The rules:

- core (``ecc_hw`` less the CLI and the three subpackages) imports neither the hardware, the bench, the
  boards, the CLI, nor Amaranth or cocotb: the golden and cycle models are plain Python;
- the hardware (``ecc_hw.rtl_gen``) takes from the core only the parameter format, the arithmetic
  module (bounds, widths, schedules), the layer geometry, the variant enums, errors and atomic writes, and
  for graph networks their parameter format, edge geometry and bounds: never the golden, float or cycle
  model, nor the converter;
- the bench (``ecc_hw.sim``) may import core and hardware, not the boards or the CLI;
- the boards (``ecc_hw.boards``) may import core, hardware and bench, not the CLI.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# source folder -> the import package it installs as (pyproject.toml, [tool.setuptools.package-dir])
FOLDERS = {"ecc_hw": "ecc_hw", "rtl_gen": "ecc_hw.rtl_gen", "sim": "ecc_hw.sim", "boards": "ecc_hw.boards"}
HARDWARE_MAY_USE = {"ecc_hw.params", "ecc_hw.arithmetic", "ecc_hw.linear", "ecc_hw.variants", "ecc_hw.errors",
                    "ecc_hw.atomic",
                    # the graph parameter format, its edges' geometry and its bounds (issue 15)
                    "ecc_hw.graph.store", "ecc_hw.graph.network", "ecc_hw.graph.quantise", "ecc_hw.graph.edge_map",
                    "ecc_hw.graph.bounds"}
NOT_IN_CORE = ("amaranth", "cocotb", "cocotb_tools")


def layer_of(module: str) -> str:
    """The layer a module of ours belongs to: core, hardware, bench, boards or cli."""
    for prefix, layer in (("ecc_hw.rtl_gen", "hardware"), ("ecc_hw.sim", "bench"), ("ecc_hw.boards", "boards"),
                          ("ecc_hw.cli", "cli")):
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return "core"


def source_modules() -> dict[str, str]:
    """Module name -> source text of every module in the four source folders."""
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path.read_text()
    return modules


def imported_names(module: str, source: str, is_package: bool) -> set[str]:
    """Every absolute module name that ``source`` imports (``from a import b`` also yields ``a.b``)."""
    names = set()
    base = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[:len(base) - (node.level - 1)]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


def violations(modules: dict[str, str], packages: set[str]) -> list[str]:
    """One line per import that breaks the contract, for the given module sources."""
    ours = set(modules)
    found = []
    for module, source in modules.items():
        layer = layer_of(module)
        for name in sorted(imported_names(module, source, module in packages)):
            if layer == "core" and name.split(".")[0] in NOT_IN_CORE:
                found.append(f"{module} (core) imports {name}")
            if name not in ours:
                continue
            target = layer_of(name)
            allowed = {"core": {"core"}, "hardware": {"core", "hardware"}, "bench": {"core", "hardware", "bench"},
                       "boards": {"core", "hardware", "bench", "boards"},
                       "cli": {"core", "hardware", "bench", "boards", "cli"}}[layer]
            if target not in allowed:
                found.append(f"{module} ({layer}) imports {name} ({target})")
            elif layer == "hardware" and target == "core" and name != "ecc_hw" and name not in HARDWARE_MAY_USE:
                found.append(f"{module} (hardware) imports {name}: only {sorted(HARDWARE_MAY_USE)}")
    return found


def package_names() -> set[str]:
    """The modules that are packages (an ``__init__.py``)."""
    names = set()
    for folder, package in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            names.add(".".join([package, *parts]))
    return names


def test_the_source_tree_keeps_the_contract():
    assert violations(source_modules(), package_names()) == []


@pytest.mark.parametrize("module, line, expected", [
    ("ecc_hw.golden", "from ecc_hw.rtl_gen import plan", "ecc_hw.golden (core) imports ecc_hw.rtl_gen"),
    ("ecc_hw.convert", "    from .sim import runner", "ecc_hw.convert (core) imports ecc_hw.sim"),
    ("ecc_hw.metrics", "import amaranth", "ecc_hw.metrics (core) imports amaranth"),
    ("ecc_hw.rtl_gen.plan", "from ecc_hw import golden", "ecc_hw.rtl_gen.plan (hardware) imports ecc_hw.golden"),
    ("ecc_hw.rtl_gen.top", "from ..cycle_model import walk_cycles", "imports ecc_hw.cycle_model"),
    ("ecc_hw.rtl_gen.top", "from ..sim import runner", "ecc_hw.rtl_gen.top (hardware) imports ecc_hw.sim"),
    ("ecc_hw.sim.runner", "from ecc_hw.boards.build import build", "(bench) imports ecc_hw.boards.build"),
    ("ecc_hw.boards.run", "from ecc_hw import cli", "ecc_hw.boards.run (boards) imports ecc_hw.cli (cli)"),
])
def test_a_wrong_way_import_is_caught(module, line, expected):
    """Mutation check: one forbidden import added to an otherwise clean tree is reported."""
    modules = source_modules()
    if module not in modules:
        modules[module] = ""
    modules[module] += "\n\ndef _mutant():\n" + ("    " + line.strip()) + "\n"
    found = violations(modules, package_names())
    assert len(found) >= 1 and any(expected in line for line in found), found


def test_the_rules_allow_what_the_layers_need():
    modules = {"ecc_hw.cli": "from ecc_hw.boards import build\nfrom ecc_hw.sim import runner",
               "ecc_hw.boards.run": "from ecc_hw.sim import runner\nfrom ecc_hw.rtl_gen import plan",
               "ecc_hw.sim.runner": "from ecc_hw.rtl_gen import generate\nfrom ecc_hw import golden",
               "ecc_hw.rtl_gen.plan": "from ecc_hw.arithmetic import membrane_width\nfrom ..params import load",
               "ecc_hw.rtl_gen": "", "ecc_hw.sim": "", "ecc_hw.boards": "",
               "ecc_hw.arithmetic": "", "ecc_hw.params": "", "ecc_hw.golden": "from .arithmetic import x"}
    assert violations(modules, {"ecc_hw.rtl_gen", "ecc_hw.sim", "ecc_hw.boards"}) == []


def import_cycles(modules: dict[str, str], packages: set[str]) -> list[list[str]]:
    """Cycles in the graph of imports between our (non-package) modules, each as a list of names."""
    edges = {module: sorted(name for name in imported_names(module, source, module in packages)
                            if name in modules and name not in packages and name != module)
             for module, source in modules.items()}
    cycles, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for target in edges[module]:
            if state.get(target) == "open":
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(modules):
        if module not in state:
            visit(module, [module])
    return cycles


def test_no_two_modules_import_each_other():
    assert import_cycles(source_modules(), package_names()) == []


def test_an_import_cycle_is_caught():
    modules = {"ecc_hw.golden": "from .radix import run", "ecc_hw.radix": "def f():\n    from . import golden"}
    assert import_cycles(modules, set()) == [["ecc_hw.golden", "ecc_hw.radix", "ecc_hw.golden"]]


LONG_MODULE_LINES = 400
LONG_MODULE_REASON = "Why this module is long:"


def test_no_module_over_400_lines_without_a_reason():
    """A module past about 400 lines says why in its docstring (a paragraph starting with the marker)."""
    long_ones = []
    for module, source in source_modules().items():
        docstring = ast.get_docstring(ast.parse(source)) or ""
        if source.count("\n") > LONG_MODULE_LINES and LONG_MODULE_REASON not in docstring:
            long_ones.append(f"{module}: {source.count(chr(10))} lines")
    assert long_ones == []
