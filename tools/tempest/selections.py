"""Which tempest tests each service runs, and what tempest.conf says about it.

One :class:`Selection` per service, kept in :data:`SELECTIONS`.  A service
that nimbus gains (compute, network, volume) adds its entry here: the regex
of its tests, the catalog types it may be registered under, its
``[<service>-feature-enabled]`` switches and the fixed settings its tests
need.  Nothing else in the runner names a service, except that identity is
always configured: every run authenticates through it.

The figures in the comments are selected-test counts in tempest 47.0.0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "SELECTIONS",
    "TEMPEST_SERVICES",
    "Feature",
    "Selection",
    "by_name",
]

#: Every ``[service_available]`` switch tempest has for the services it can
#: test; those of services not run are written false.
TEMPEST_SERVICES = ("glance", "nova", "neutron", "cinder", "swift", "horizon")

Settings = Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class Feature:
    """An optional part of a service's API, off unless asked for.

    :ivar flag: the ``[<service>-feature-enabled]`` boolean it sets, if any.
    :ivar extension: the ``api_extensions`` entry it adds, if any.
    :ivar tests: a regex of tests that tempest runs whatever its flags say;
        they are excluded from the selection unless the feature is asked for.
    :ivar implies: other features of the same service it switches on.
    :ivar settings: further tempest.conf values written when it is on.
    :ivar default: on without being asked for (its flag is always true).
    """

    name: str
    flag: str | None = None
    extension: str | None = None
    tests: str | None = None
    implies: tuple[str, ...] = ()
    settings: Settings = field(default_factory=dict)
    default: bool = False


@dataclass(frozen=True)
class Selection:
    """The tempest tests of one service and the facts they need.

    :ivar name: the service as the command line names it (``identity``).
    :ivar regex: ``tempest run --regex``: the tests selected.
    :ivar section: its tempest.conf section (``[identity]``, ``[image]``).
    :ivar catalog_types: service types to look for in the catalog, in order;
        the first one found is its ``catalog_type``.
    :ivar available: its ``[service_available]`` switch; ``None`` for
        identity, which tempest always needs.
    :ivar features: its optional features (see :class:`Feature`).
    :ivar settings: fixed tempest.conf values written when it is run.
    """

    name: str
    regex: str
    section: str
    catalog_types: tuple[str, ...]
    available: str | None
    features: tuple[Feature, ...] = ()
    settings: Settings = field(default_factory=dict)

    @property
    def feature_section(self) -> str:
        """Return the section of its feature switches."""
        return f"{self.section}-feature-enabled"

    def feature(self, name: str) -> Feature:
        """Return the feature called *name*.

        :raises KeyError: it has none of that name.
        """
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    def expand(self, asked: frozenset[str]) -> frozenset[str]:
        """Return *asked* with ``all`` spelled out and implied features added.

        :raises ValueError: a name is not one of its features.
        """
        names = {feature.name for feature in self.features}
        wanted = set(names) if "all" in asked else set(asked)
        unknown = sorted(wanted - names)
        if unknown:
            raise ValueError(
                f"unknown {self.name} feature(s) {', '.join(unknown)}; "
                f"choose among {', '.join(sorted(names))} or all"
            )
        for name in list(wanted):
            wanted.update(self.feature(name).implies)
        return frozenset(wanted)

    def excluded(self, enabled: frozenset[str]) -> list[str]:
        """Return the regexes of the tests of features that are off."""
        return [f.tests for f in self.features if f.tests and f.name not in enabled]


def _flags(*names: str) -> tuple[Feature, ...]:
    return tuple(Feature(name, flag=name) for name in names)


_IDENTITY_V3 = r"tempest\.api\.identity\.(admin\.)?v3\."
_ADMIN_V3 = r"tempest\.api\.identity\.admin\.v3\."

IDENTITY = Selection(
    # 138 tests; 117 once the optional groups below are excluded.  Every
    # identity test of tempest 47 is a v3 one.
    name="identity",
    regex="^" + _IDENTITY_V3,
    section="identity",
    catalog_types=("identity",),
    available=None,
    features=(
        Feature("trust", flag="trust"),  # TrustsV3TestJSON, 6
        Feature("inherit", extension="OS-INHERIT"),  # InheritsV3TestJSON, 6
        Feature("ec2", extension="OS-EC2"),  # EC2CredentialsTest, 4
        Feature(
            "security_compliance",  # IdentityV3UsersTest (3) and one users test
            flag="security_compliance",
            # must equal the cloud's [security_compliance] settings
            settings={
                "identity": {
                    "user_lockout_failure_attempts": "2",
                    "user_lockout_duration": "5",
                    "user_unique_last_password_count": "2",
                    "user_minimum_password_age": "0",
                }
            },
        ),
        Feature("domain_specific_drivers", flag="domain_specific_drivers"),
        # tempest has no switch for these groups: excluded by regex when off
        Feature(
            "application_credentials",
            tests=r"tempest\.api\.identity\.(admin\.)?v3\.test_application_credentials\.",
        ),
        Feature(
            "access_rules",
            flag="access_rules",
            tests=r"tempest\.api\.identity\.v3\.test_access_rules\.",
            implies=("application_credentials",),
        ),
        Feature("oauth1", tests=_ADMIN_V3 + r"test_oauth_consumers\."),
        Feature("endpoint_groups", tests=_ADMIN_V3 + r"test_endpoint_groups\."),
        Feature("domain_config", tests=_ADMIN_V3 + r"test_domain_configuration\."),
        Feature("policies", tests=_ADMIN_V3 + r"test_policies\."),
    ),
    settings={
        "identity": {
            "auth_version": "v3",
            "v3_endpoint_type": "public",
            "admin_role": "admin",
            "default_domain_id": "default",
        },
        "identity-feature-enabled": {
            "api_v2": "false",
            "api_v3": "true",
            "immutable_user_source": "false",
        },
    },
)

IMAGE = Selection(
    name="image",  # 102 tests
    regex=r"^tempest\.api\.image\.v2\.",
    section="image",
    catalog_types=("image",),
    available="glance",
    features=_flags(
        "import_image",
        "os_glance_reserved",
        "manage_locations",
        "image_conversion",
        "http_store_enabled",
        "store_weight_enabled",
    ),
)


def _compute_off() -> tuple[Feature, ...]:
    # Not served (yet): off unless asked for.
    return _flags(
        "disk_config",
        "change_password",
        "resize",
        "shelve",
        "shelve_migrate",
        "cold_migration",
        "live_migration",
        "metadata_service",
        "vnc_console",
        "spice_console",
        "serial_console",
        "rescue",
        "stable_rescue",
        "enable_instance_password",
        "interface_attach",
        "personality",
        "attach_encrypted_volume",
        "config_drive",
        "swap_volume",
        "volume_multiattach",
        "ide_bus",
        "unified_limits",
    )


COMPUTE = Selection(
    # 257 tests: servers, flavors and key pairs.  The server tests need an
    # image and two flavors: the runner makes them (tools/tempest/resources.py).
    name="compute",
    regex=r"^tempest\.api\.compute\.(servers|flavors|keypairs)\.",
    section="compute",
    catalog_types=("compute",),
    available="nova",
    features=(
        # What nimbus's compute serves, on its fake driver and the libvirt one.
        *(
            Feature(name, flag=name, default=True)
            for name in ("pause", "suspend", "console_output", "snapshot")
        ),  # fmt: skip
        *_compute_off(),
    ),
)


#: The services the runner knows, in the order it runs them.
SELECTIONS: tuple[Selection, ...] = (IDENTITY, IMAGE, COMPUTE)


def by_name(name: str) -> Selection:
    """Return the selection of the service *name*.

    :raises KeyError: the runner has no selection for it.
    """
    for selection in SELECTIONS:
        if selection.name == name:
            return selection
    raise KeyError(name)
