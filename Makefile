# Engram — the two commands of the README, and the rest.
#   make demo    install deps, build (Release), run sql/examples/quickstart.sql in the sqlite3 shell
#   make test    install deps, build, run every test (ctest: unit, sql, examples, clients, tsan)
#   make bench   build and run the benchmarks; writes bench/report.md
#   make stress  the long stress / crash runs
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: all deps build demo test bench stress clean format

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@bash scripts/demo.sh $(BUILD)

test: build
	@bash scripts/install-node-client.sh
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE stress

bench:
	@bash scripts/install-deps.sh --bench
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@bash scripts/bench.sh $(BUILD)

stress: build
	@cd $(BUILD) && ctest --output-on-failure -L stress

format:
	@clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	@rm -rf $(BUILD)
