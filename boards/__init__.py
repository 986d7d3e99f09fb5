"""FPGA board targets for the ECC-SNN accelerator (issue 6).

``targets``: the boards (iCEBreaker, ULX3S 85F): clock, pins, memory policy, resource limits.
``uart`` and ``top``: the board top, the accelerator behind a framed UART link (``framing`` documents
the frames and is the host side's codec). ``build``: fit check, Yosys + nextpnr + packer (YoWASP),
report. ``run``: the host client (pyserial).
"""
