# The user commands. Each installs the Debian packages first (idempotent), then configures and builds
# Release with CMake in build/.
#   make demo   train LeNet-5 on Fashion-MNIST (3 epochs), save a .ckpt, export it to ONNX and
#               check the export in ONNX Runtime; then a short long_run (ModelCheckpoint every second
#               with retention, ProgressBar, TensorBoard, CSV log) that lists its checkpoints
#   make test   run every test except those labelled slow
#   make bench  training throughput of Anvil vs PyTorch on the same networks, same run; checkpoint
#               save/load bandwidth vs dd and PyTorch; ONNX export time of ResNet-50; the training
#               thread's stall during an async ModelCheckpoint save vs an in-memory copy
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: deps configure build demo test test-all bench clean

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	mkdir -p $(BUILD)/demo
	$(BUILD)/examples/train_lenet --epochs 3 --save $(BUILD)/demo/lenet.ckpt
	$(BUILD)/tools/anvil ckpt info $(BUILD)/demo/lenet.ckpt
	$(BUILD)/tools/anvil export --model lenet --ckpt $(BUILD)/demo/lenet.ckpt --out $(BUILD)/demo/lenet.onnx --verify
	rm -rf $(BUILD)/demo/long_run
	$(BUILD)/examples/long_run --out $(BUILD)/demo/long_run

test: build
	cd $(BUILD) && ctest -LE slow --output-on-failure -j $(JOBS)

test-all: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	bash bench/run.sh $(BUILD)
	bash bench/ckpt_bench.sh $(BUILD)
	OMP_NUM_THREADS=1 $(BUILD)/bench/onnx_export_bench
	OMP_NUM_THREADS=1 $(BUILD)/bench/ckpt_stall_bench --dir $(BUILD)/ckpt_stall_bench

clean:
	rm -rf $(BUILD)
