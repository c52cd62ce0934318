# The two set-up commands of the README: `make up` runs the cloud, `make test` the tests.
PYTHON ?= python3
VENV ?= .venv
ARGS ?=

.PHONY: up test lint genconfig clean system-packages

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[mysql,postgresql,client]' tox
	touch $@

up: $(VENV)/.installed
	$(VENV)/bin/nimbus up $(ARGS)

system-packages:
	tools/install-system-packages.sh

test: $(VENV)/.installed system-packages
	$(VENV)/bin/tox -e pep8,py311,integration,genconfig

lint: $(VENV)/.installed
	$(VENV)/bin/tox -e pep8

genconfig: $(VENV)/.installed
	$(VENV)/bin/tox -e genconfig

clean:
	rm -rf $(VENV) .tox build *.egg-info
