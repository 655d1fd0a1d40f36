# oc2mqtt: one Makefile, the same verbs for every language.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/oc2mqtt-target
CARGO ?= cargo
BINDINGS := python c node

.PHONY: help setup build test test-brokers test-rust lint test-python test-c test-node bench bench-core demo fmt generate soak groups dynsec fleet cluster

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: ## Install what this machine lacks (apt packages, Python and Node tools); idempotent
	bash scripts/setup.sh
	@for b in $(BINDINGS); do if [ -f bindings-$$b/Makefile ]; then $(MAKE) -C bindings-$$b setup || exit 1; fi; done

build: ## Build the Rust crates (release) and every binding
	$(CARGO) build --release -p oc2mqtt -p oc2mqtt-cli
	@for b in $(BINDINGS); do if [ -f bindings-$$b/Makefile ]; then $(MAKE) -C bindings-$$b build || exit 1; fi; done

test: setup test-brokers test-rust test-python test-c test-node ## Run every test of every language (installs what is missing first)
	@echo "make test: all languages passed"

test-brokers: ## The broker fixtures every language uses: Mosquitto, RabbitMQ, ActiveMQ, fake servers (pytest)
	bindings-python/.venv/bin/python -m pytest -q -p no:cacheprovider tests/broker/test_broker.py

test-rust: lint ## Rust: unit, doc, vector and broker integration tests, CLI tests
	$(CARGO) test -p oc2mqtt -p oc2mqtt-cli

# Every crate but bench/rust (whose paho-mqtt floor needs cmake; `make bench` builds it).
LINTED := -p oc2mqtt -p oc2mqtt-cli -p oc2mqtt-python -p oc2mqtt-c -p oc2mqtt-node

lint: ## clippy -D warnings on all targets of core, CLI and the three bindings; rustfmt check
	$(CARGO) fmt --all --check
	$(CARGO) clippy $(LINTED) --all-targets -- -D warnings

test-python: ## Python binding tests (pytest)
	$(MAKE) -C bindings-python test

test-c: ## C library tests (normal, ASan/UBSan, valgrind)
	$(MAKE) -C bindings-c test

test-node: ## Node package tests (node --test)
	$(MAKE) -C bindings-node test

soak: ## The long fault and soak runs (about 12 min): 20 broker SIGKILLs under load, 10 min at 800 commands/s
	OC2MQTT_FAULT_KILLS=20 $(CARGO) test --release -p oc2mqtt --test faults -- --include-ignored --nocapture
	OC2MQTT_SOAK_SECS=600 OC2MQTT_SOAK_RATE=800 $(CARGO) test --release -p oc2mqtt-cli --test soak -- --nocapture

groups: ## Consumer groups on Mosquitto (3 members share 3000 commands, one killed mid-stream); refused on RabbitMQ/ActiveMQ
	OC2MQTT_GROUP_COMMANDS=3000 $(CARGO) test --release -p oc2mqtt --test groups -- --nocapture
	$(CARGO) test --release -p oc2mqtt-cli --test cli serve_with_a_group -- --nocapture

dynsec: ## Mosquitto's dynamic security: least-privilege roles made with mosquitto_ctrl, refusals, roles changed while running
	$(CARGO) test --release -p oc2mqtt --test dynsec -- --nocapture
	bindings-python/.venv/bin/python -m pytest -q -p no:cacheprovider tests/broker/test_broker.py -k dynsec

cluster: ## A 3-node RabbitMQ cluster (about 6 min): nodes killed and stopped under a stream, clients failing over; every queue setting
	OC2MQTT_CLUSTER_STOPS=6 $(CARGO) test --release -p oc2mqtt --test cluster -- --include-ignored --nocapture --test-threads 1
	bindings-python/.venv/bin/python -m pytest -q -p no:cacheprovider tests/broker/test_broker.py -k cluster

fleet: ## A fleet of 1 000 devices (about 2 min): a deny to all of them, `to` and broadcast, beside otupy's producer; writes bench/fleet/fleet.svg
	bash bench/fleet/run.sh

bench-core: ## Criterion benchmarks of the sans-IO core
	$(CARGO) bench -p oc2mqtt --bench core -- --warm-up-time 1 --measurement-time 3

bench: bench-core ## Every benchmark (core, end-to-end, bindings); see bench/RESULTS.md
	bash bench/rust/run.sh
	@for b in $(BINDINGS); do if [ -f bindings-$$b/Makefile ]; then $(MAKE) -C bindings-$$b bench || exit 1; fi; done

demo: setup ## The main job: a real producer <-> consumer exchange through a throwaway broker
	bash scripts/demo.sh

fmt: ## Format the Rust code
	$(CARGO) fmt --all

generate: ## Rewrite the bindings' per-setting declarations from core's settings tables (core/tests/generated.rs), then the C header
	OC2MQTT_BLESS=1 $(CARGO) test -p oc2mqtt --test generated
	$(MAKE) -C bindings-c header
