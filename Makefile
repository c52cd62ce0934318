# The two set-up commands of the README: `make up` runs the cloud, `make test` the tests.
PYTHON ?= python3
VENV ?= .venv
ARGS ?=

# The supported Pythons; `make test` runs the unit and functional tests on
# each of them this machine has.  pyenv hides installed versions that are
# not selected (their commands exist but refuse to run), so select the
# newest 3.11, 3.12 and 3.13 it has next to the current one.
SUPPORTED_PYTHONS := 3.11 3.12 3.13
ifneq ($(shell command -v pyenv 2>/dev/null),)
PYENV_VERSION := $(shell \
	selected=$${PYENV_VERSION:-$$(pyenv version-name 2>/dev/null)}; \
	for minor in $(SUPPORTED_PYTHONS); do \
		newest=$$(pyenv versions --bare 2>/dev/null | grep -x "$$minor\.[0-9]*" | sort -V | tail -n 1); \
		[ -z "$$newest" ] || echo ":$$selected:" | grep -qF ":$$newest:" || selected="$$selected:$$newest"; \
	done; echo "$$selected")
export PYENV_VERSION
endif
TEST_PYTHONS := $(strip $(foreach v,$(SUPPORTED_PYTHONS),$(if $(shell \
	PYENV_VERSION='$(PYENV_VERSION)' python$(v) -c '' 2>/dev/null && echo yes),py$(subst .,,$(v)))))
# Under CI, tools/install-system-packages.sh also installs and starts the
# database and message servers the integration tests use.
SERVICES := $(if $(filter true 1,$(CI) $(NIMBUS_INSTALL_SERVICES)),--services)

comma := ,
space := $(subst ,, )

.PHONY: up test lint genconfig clean system-packages

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[mysql,postgresql,client]' tox
	touch $@

up: $(VENV)/.installed
	$(VENV)/bin/nimbus up $(ARGS)

system-packages:
	tools/install-system-packages.sh $(SERVICES)

# The example third-party driver runs the identity contract in its own tox
# environment, with nimbus installed from this checkout.
test: $(VENV)/.installed system-packages
	@echo "nimbus: unit and functional tests on $(or $(TEST_PYTHONS),no supported Python)"
	$(VENV)/bin/tox -e pep8,$(subst $(space),$(comma),$(or $(TEST_PYTHONS),py311)),integration,genconfig
	cd examples/nimbus-identity-static && $(abspath $(VENV))/bin/tox -e py3

lint: $(VENV)/.installed
	$(VENV)/bin/tox -e pep8

genconfig: $(VENV)/.installed
	$(VENV)/bin/tox -e genconfig

clean:
	rm -rf $(VENV) .tox build *.egg-info examples/*/.tox examples/*/*.egg-info
