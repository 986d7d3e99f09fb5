"""Cocotb benches of the generated accelerator (issue 4).

``tb_ecc_snn.v`` wraps the generated ``ecc_snn`` with a Verilog source, sink and monitor (idle gaps,
back-pressure, cycle and stall counters, a text record of every trace and result word);
``network_tb`` is the cocotb test that clocks it; ``lane_tb`` drives the synapse lane and fire
sweep units alone. ``ecc_hw.verify`` builds and runs them through ``cocotb_tools.runner`` and checks
the records against the golden model and the cycle model.
"""
