"""tempest.conf from the cloud's facts, and the selections it follows."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from tools.tempest import config, selections
from tools.tempest.selections import IDENTITY, IMAGE

ADMIN = config.Admin("admin", "secretpw", "admin")
CATALOG = config.Catalog(frozenset({"identity", "image"}), "RegionOne")
URL = "http://127.0.0.1:8770/identity/v3"


def build(services=(IDENTITY, IMAGE), features=None, **kwargs):  # type: ignore[no-untyped-def]
    return config.build(URL, ADMIN, CATALOG, services, features or {}, **kwargs)


def test_identity_and_image_get_the_harness_facts() -> None:
    conf, warnings = build()
    assert warnings == []
    assert conf["identity"] == {
        "uri_v3": URL,
        "region": "RegionOne",
        "auth_version": "v3",
        "v3_endpoint_type": "public",
        "admin_role": "admin",
        "default_domain_id": "default",
        "catalog_type": "identity",
    }
    assert conf["auth"] == {
        "use_dynamic_credentials": "true",
        "admin_username": "admin",
        "admin_password": "secretpw",
        "admin_project_name": "admin",
        "admin_domain_name": "Default",
        "admin_user_domain_name": "Default",
        "admin_project_domain_name": "Default",
        "default_credentials_domain_name": "Default",
        "create_isolated_networks": "false",
    }
    assert conf["identity-feature-enabled"] == {
        "api_v2": "false",
        "api_v3": "true",
        "immutable_user_source": "false",
        "trust": "false",
        "security_compliance": "false",
        "domain_specific_drivers": "false",
        "access_rules": "false",
        "api_extensions": "",
    }
    assert conf["service_available"] == {
        "glance": "true",
        **{s: "false" for s in ("nova", "neutron", "cinder", "swift", "horizon")},
    }
    assert conf["image"] == {"region": "RegionOne", "catalog_type": "image"}
    assert set(conf["image-feature-enabled"].values()) == {"false"}
    assert len(conf["image-feature-enabled"]) == 6
    assert conf["validation"] == {"run_validation": "false"}
    assert conf["DEFAULT"] == {"debug": "true"}
    for section in ("compute", "network", "volume"):
        assert conf[section] == {"region": "RegionOne"}


def test_identity_alone_leaves_the_image_service_out() -> None:
    conf, _ = build(services=[IDENTITY])
    assert conf["service_available"]["glance"] == "false"
    assert "catalog_type" not in conf["image"]
    assert "image-feature-enabled" not in conf


def test_image_alone_still_configures_identity() -> None:
    conf, _ = build(services=[IMAGE])
    assert conf["identity"]["catalog_type"] == "identity"
    assert conf["identity-feature-enabled"]["trust"] == "false"


def test_identity_features_set_flags_extensions_and_settings() -> None:
    on = IDENTITY.expand(frozenset({"trust", "inherit", "ec2", "security_compliance"}))
    conf, _ = build(features={"identity": on})
    enabled = conf["identity-feature-enabled"]
    assert enabled["trust"] == enabled["security_compliance"] == "true"
    assert enabled["api_extensions"] == "OS-INHERIT,OS-EC2"
    assert conf["identity"]["user_lockout_failure_attempts"] == "2"


def test_the_default_identity_selection_excludes_the_groups_tempest_cannot_switch_off() -> None:
    assert IDENTITY.excluded(frozenset()) == [
        r"tempest\.api\.identity\.(admin\.)?v3\.test_application_credentials\.",
        r"tempest\.api\.identity\.v3\.test_access_rules\.",
        r"tempest\.api\.identity\.admin\.v3\.test_oauth_consumers\.",
        r"tempest\.api\.identity\.admin\.v3\.test_endpoint_groups\.",
        r"tempest\.api\.identity\.admin\.v3\.test_domain_configuration\.",
        r"tempest\.api\.identity\.admin\.v3\.test_policies\.",
    ]
    assert IDENTITY.regex == r"^tempest\.api\.identity\.(admin\.)?v3\."
    assert IMAGE.regex == r"^tempest\.api\.image\.v2\."


def test_access_rules_bring_application_credentials_and_all_is_everything() -> None:
    on = IDENTITY.expand(frozenset({"access_rules"}))
    assert on == {"access_rules", "application_credentials"}
    assert IDENTITY.excluded(on) == IDENTITY.excluded(frozenset())[2:]
    assert IDENTITY.excluded(IDENTITY.expand(frozenset({"all"}))) == []
    conf, _ = build(features={"image": IMAGE.expand(frozenset({"import_image"}))})
    assert conf["image-feature-enabled"]["import_image"] == "true"


def test_an_unknown_feature_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown image feature.*import_image"):
        IMAGE.expand(frozenset({"tasks"}))


def test_every_service_has_one_selection_with_distinct_features() -> None:
    names = [s.name for s in selections.SELECTIONS]
    assert len(set(names)) == len(names)
    assert selections.by_name("image") is IMAGE
    for selection in selections.SELECTIONS:
        features = [f.name for f in selection.features]
        assert len(set(features)) == len(features)
        assert selection.regex.startswith("^tempest\\.api\\.")
    with pytest.raises(KeyError):
        selections.by_name("network")


def test_a_service_missing_from_the_catalog_is_warned_about() -> None:
    catalog = config.Catalog(frozenset({"identity"}), "RegionOne")
    conf, warnings = config.build(URL, ADMIN, catalog, [IMAGE], {})
    assert conf["image"]["catalog_type"] == "image"
    assert warnings == ["image: none of the service types image is in the catalog"]


def test_region_and_overrides_are_the_callers_last_word() -> None:
    conf, _ = build(region="Two", overrides=[("identity", "admin_role", "boss")])
    assert conf["identity"]["region"] == conf["image"]["region"] == "Two"
    assert conf["identity"]["admin_role"] == "boss"


def test_the_region_is_that_of_the_public_identity_endpoint() -> None:
    token_catalog = [
        {"type": "image", "endpoints": [{"interface": "public", "region_id": "Other"}]},
        {
            "type": "identity",
            "endpoints": [
                {"interface": "admin", "region_id": "Admin"},
                {"interface": "public", "region_id": "East"},
            ],
        },
    ]
    assert config.Catalog.from_token(token_catalog) == config.Catalog(
        frozenset({"identity", "image"}), "East"
    )
    assert config.Catalog.from_token([]).region == "RegionOne"


def test_the_v3_url_is_found_with_or_without_the_suffix() -> None:
    assert config.uri_v3("http://h:1/identity") == "http://h:1/identity/v3"
    assert config.uri_v3("http://h:1/identity/v3/") == "http://h:1/identity/v3"


def test_writing_keeps_what_tempest_init_wrote_and_drops_a_former_run(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "tempest.conf"
    path.parent.mkdir()
    path.write_text(
        "[DEFAULT]\nlog_dir = /ws/logs\nlog_file = tempest.log\nstale = 1\n\n"
        "[oslo_concurrency]\nlock_path = /ws/lock\n\n[compute]\nimage_ref = old\n"
    )
    conf, _ = build()
    config.write(path, conf)
    parser = configparser.RawConfigParser()
    parser.read(path)
    assert parser.defaults() == {"log_dir": "/ws/logs", "log_file": "tempest.log", "debug": "true"}
    assert parser.get("oslo_concurrency", "lock_path") == "/ws/lock"
    assert not parser.has_option("compute", "image_ref")
    assert parser.get("auth", "admin_password") == "secretpw"
