# Thin wrapper over CMake. `make demo` and `make test` are the README's Quick start.
BUILD ?= build
JOBS ?= $(shell nproc)
PY ?= python3

.PHONY: all deps pydeps slurmdeps build demo test test-asan bench clean

all: build

deps:
	bash scripts/install-deps.sh

pydeps:
	bash scripts/install-deps.sh --python

# Slurm for tests/test_slurm.sh: in CI (CI=true) or when asked (make test SLURM=1); else that test skips.
slurmdeps:
	@if [ "$${CI:-}" = true ] || [ -n "$(SLURM)" ]; then bash scripts/install-deps.sh --slurm; fi

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

demo: deps build
	$(BUILD)/peftbench run suites/quick.json

# All tests, the PyTorch cross-checks included (installs the pinned PyPI peers and chromium if missing), with
# the default CPU GEMM provider and then with each other one built in (PB_GEMM).
test: deps pydeps slurmdeps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	bash scripts/test-providers.sh $(BUILD) $(JOBS)

# The pure-C tests under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPB_SANITIZE=ON -DPB_CUDA=OFF >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS) -L fast

bench: build
	$(BUILD)/peftbench bench --model vit-tiny --batch 64

clean:
	rm -rf $(BUILD) build-asan
