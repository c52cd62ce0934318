# The two set-up commands of the README: `make up` runs the cloud, `make test` the tests.
PYTHON ?= python3
VENV ?= .venv
ARGS ?=
comma := ,
space := $(subst ,, )

# The supported Pythons; `make test` runs the unit and functional tests on
# each of them this machine has.  pyenv hides installed versions that are
# not selected behind commands that refuse to run (python3.12: command not
# found), so the bin directory of the newest installed 3.11, 3.12 or 3.13
# that does not run goes at the end of PATH: tox finds it there after the
# shims, and python3 stays whatever it was.
SUPPORTED_PYTHONS := 3.11 3.12 3.13
ifneq ($(shell command -v pyenv 2>/dev/null),)
PYENV_BINS := $(shell \
	root=$$(pyenv root); \
	for minor in $(SUPPORTED_PYTHONS); do \
		python$$minor -c '' 2>/dev/null && continue; \
		newest=$$(pyenv versions --bare 2>/dev/null | grep -x "$$minor\.[0-9]*" | sort -V | tail -n 1); \
		[ -n "$$newest" ] && [ -x "$$root/versions/$$newest/bin/python$$minor" ] \
			&& echo "$$root/versions/$$newest/bin"; \
	done)
ifneq ($(PYENV_BINS),)
export PATH := $(PATH):$(subst $(space),:,$(strip $(PYENV_BINS)))
endif
endif
TEST_PYTHONS := $(strip $(foreach v,$(SUPPORTED_PYTHONS),$(if $(shell \
	python$(v) -c '' 2>/dev/null && echo yes; \
	for dir in $(PYENV_BINS); do [ -x "$$dir/python$(v)" ] && echo yes; done),py$(subst .,,$(v)))))
# Under CI, tools/install-system-packages.sh also installs and starts the
# database and message servers the integration tests use, and libvirtd with QEMU.
SERVICES := $(if $(filter true 1,$(CI) $(NIMBUS_INSTALL_SERVICES)),--services --virt)

.PHONY: up test tempest lint genconfig clean system-packages

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[mysql,postgresql,client]' tox
	touch $@

up: $(VENV)/.installed
	$(VENV)/bin/nimbus up $(ARGS)

system-packages:
	tools/install-system-packages.sh $(SERVICES)

# The unit tests run on every supported Python the machine has, the
# functional ones (real servers, most of the run's time) on the first of
# them.  The example third-party driver runs the identity contract in its
# own tox environment, with nimbus installed from this checkout.  Last,
# OpenStack's tempest API tests against a throw-away `nimbus up`.
FIRST_PYTHON := $(or $(firstword $(TEST_PYTHONS)),py311)
OTHER_PYTHONS := $(subst $(space),$(comma),$(wordlist 2,9,$(TEST_PYTHONS)))
test: $(VENV)/.installed system-packages
	@echo "nimbus: unit and functional tests on $(FIRST_PYTHON), unit tests on $(or $(OTHER_PYTHONS),no other Python)"
	$(VENV)/bin/tox -e pep8,$(FIRST_PYTHON),integration,genconfig
	$(if $(OTHER_PYTHONS),$(VENV)/bin/tox -e $(OTHER_PYTHONS) -- tests/unit)
	cd examples/nimbus-identity-static && $(abspath $(VENV))/bin/tox -e py3
	$(VENV)/bin/tox -e tempest,tempest-import

# OpenStack's tempest API tests against a throw-away `nimbus up` (tools/tempest).
tempest: $(VENV)/.installed
	$(VENV)/bin/tox -e tempest $(if $(ARGS),-- $(ARGS))

lint: $(VENV)/.installed
	$(VENV)/bin/tox -e pep8

genconfig: $(VENV)/.installed
	$(VENV)/bin/tox -e genconfig

clean:
	rm -rf $(VENV) .tox build *.egg-info examples/*/.tox examples/*/*.egg-info
