"""Verification of the generated accelerator: cocotb benches on Icarus and Verilator (``ecc-hw verify``).

Simulator side: ``tb_ecc_snn.v`` wraps the generated ``ecc_snn`` with a Verilog source, sink and
monitor (idle gaps, back-pressure, cycle and stall counters, a text record of every trace and result
word); ``network_tb`` is the cocotb test that clocks it; ``lane_tb`` drives the synapse lane and fire
sweep units alone (``lane_harness``).

Host side, one job per module: ``simulators`` (finding them, their workarounds), ``runner`` (build
then run through ``cocotb_tools.runner``), ``design`` (the design cache), ``network_bench`` (the
wrapper build and runs of images), ``records`` (the record decoded), ``check`` (against the golden
model and the cycle model), ``verify`` (the whole flow), ``lane_bench``, ``cli_verify`` (the command),
``hdl`` (the package's HDL files); ``testing`` and ``bench_sim`` serve the tests and ``make bench``.

Layering: this package may import the core package ``ecc_hw`` and ``ecc_hw.rtl_gen``, never
``ecc_hw.boards``; the core never imports it.
"""
