"""OpenStack's tempest API tests against a nimbus cloud, as CI runs them.

``python -m tools.tempest`` installs tempest from the package index into a
venv of its own, writes ``tempest.conf`` from the cloud's catalog, runs each
service's selection of tests and counts the outcome per selected test.  It
lives under ``tools/`` because it is run from a clone (``tox -e tempest``,
``make tempest``), not from an installed nimbus.

The layers, each usable alone:

- :mod:`.selections`: which tests each service runs, and the tempest.conf
  facts and optional features they depend on (data, one entry a service);
- :mod:`.subunit_v2`: reads the subunit v2 stream tempest records;
- :mod:`.counting`: turns the results into the per-service counts;
- :mod:`.config`: the cloud's catalog and the tempest.conf written from it;
- :mod:`.workspace`: the tempest venv and workspace, and the runs themselves;
- :mod:`.cloud`: a throw-away ``nimbus up`` for the tox environment.
"""
