# The two set-up commands of the README: `make up` runs the cloud, `make test` the tests.
PYTHON ?= python3
VENV ?= .venv
ARGS ?=

.PHONY: up test lint genconfig clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[mysql,postgresql,client]' tox
	touch $@

up: $(VENV)/.installed
	$(VENV)/bin/nimbus up $(ARGS)

test: $(VENV)/.installed
	$(VENV)/bin/tox -e pep8,py311,integration,genconfig

lint: $(VENV)/.installed
	$(VENV)/bin/tox -e pep8

genconfig: $(VENV)/.installed
	$(VENV)/bin/tox -e genconfig

clean:
	rm -rf $(VENV) .tox build *.egg-info
