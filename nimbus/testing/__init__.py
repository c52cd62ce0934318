"""Test helpers and driver contract suites that third-party packages can import.

``nimbus.testing.services`` finds the real MariaDB, PostgreSQL and RabbitMQ a
test needs: it skips with a clear reason when one is not reachable, and
fails instead when ``NIMBUS_REQUIRE_SERVICES=1`` (as CI sets it).
"""
