# `make run` and `make test` create .venv and install the project with its dev extra
# when needed; the install is redone only when pyproject.toml changes. A .venv without a
# working pip (a first attempt that failed half-way) is made again.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format protos bench clean

$(STAMP): pyproject.toml
	@echo "Installing Custos and its dependencies into $(VENV) (the first time: a minute or two)..."
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || { \
		$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
			|| { echo "Custos needs Python 3.11 or later: make run PYTHON=python3.12" >&2; exit 1; }; \
		rm -rf $(VENV); \
		$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
			echo "could not create $(VENV) (on Debian and Ubuntu: apt install python3-venv)" >&2; exit 1; }; }
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)
	@echo "Installed into $(VENV)."

run: $(STAMP)
	$(BIN)/custos run

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate the policy context and audit record messages from protos/ (checked in; a test keeps them current).
protos: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=custos/policy \
		--pyi_out=custos/policy protos/policy_context.proto
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=custos/audit \
		--pyi_out=custos/audit protos/audit.proto

bench: $(STAMP)
	$(BIN)/python bench/authz_overhead.py
	$(BIN)/python bench/masking_throughput.py
	$(BIN)/python bench/audit_throughput.py
	$(BIN)/python bench/pod_footprint.py

clean:
	rm -rf $(VENV) run .pytest_cache .ruff_cache
