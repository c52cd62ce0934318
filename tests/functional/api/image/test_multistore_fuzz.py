"""Random multi-store requests never make the image API fail (5xx), nor leave stray data.

The whole cloud in the simulator with two ``file`` stores (``fast``, the
default, and ``cheap``), as ``nimbus up`` has them: imports (``stores``,
``all_stores``, ``all_stores_must_succeed``, ``X-Image-Meta-Store``, the
``copy-image`` and ``glance-direct`` methods), uploads and stages to a
store, and ``DELETE /v2/stores/{store_id}/{image_id}``, with bodies and
values drawn at random.  Each answer is below 500 and in Glance's error
shape when it is an error, and every file in a store belongs to an image
that lists that store.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from oslo_config import cfg

from tests.functional.api.image.conftest import ImageAPI

OCTET = "application/octet-stream"
DATA = b"multistore" * 30
STORE_IDS = ["fast", "cheap", "nope", "", "fast,cheap", "%2e%2e", "x" * 300]
METHODS = ["copy-image", "glance-direct", "web-download", "glance-download", "", "junk"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
FUZZ = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


@pytest.fixture
def conf(conf: cfg.ConfigOpts) -> cfg.ConfigOpts:
    """The test config with nimbus up's two file stores."""
    from nimbus.conf.image import set_embedded_store_defaults

    set_embedded_store_defaults(conf)
    return conf


def _store_files(conf: cfg.ConfigOpts) -> dict[str, set[str]]:
    state = Path(conf.state_path)
    found = {}
    for store, directory in (("fast", state / "images"), ("cheap", state / "image-stores/cheap")):
        names = set(os.listdir(directory)) if directory.exists() else set()
        found[store] = {n for n in names if not n.startswith(".")}
    return found


@st.composite
def import_body(draw: st.DrawFn) -> Any:
    if not draw(st.integers(0, 9)):
        return draw(JSON_VALUES)
    body: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        body["method"] = {"name": draw(st.sampled_from(METHODS))}
    else:
        body["method"] = draw(JSON_VALUES)
    if draw(st.booleans()):
        body["stores"] = draw(st.lists(st.sampled_from(STORE_IDS), max_size=3) | JSON_VALUES)
    if draw(st.booleans()):
        body["all_stores"] = draw(st.booleans() | JSON_VALUES)
    if draw(st.booleans()):
        body["all_stores_must_succeed"] = draw(st.booleans() | JSON_VALUES)
    if not draw(st.integers(0, 9)):
        body[draw(st.text(max_size=6))] = draw(JSON_VALUES)
    return body


def _check(images: ImageAPI, result: Any, request: str) -> None:
    assert result.status_code < 500, f"{request} -> {result.status_code} {result.text}"
    if result.status_code >= 400 and result.text:
        images.assert_error(result, result.status_code)


def test_multistore_requests_never_fail(images: ImageAPI, conf: cfg.ConfigOpts) -> None:
    listed = images.request("GET", "/info/stores").json["stores"]
    assert [s["id"] for s in listed] == ["fast", "cheap"]
    active = images.create()
    images.request("PUT", f"/images/{active['id']}/file", raw=DATA, content_type=OCTET)
    pool = [active["id"]]

    @FUZZ
    @given(st.data())
    def exercise(data: st.DataObject) -> None:
        draw = data.draw
        kind = draw(st.sampled_from(["import", "import", "import", "upload", "stage", "remove"]))
        headers = {}
        if draw(st.booleans()):
            headers["X-Image-Meta-Store"] = draw(st.sampled_from(STORE_IDS[:-1]))
        if kind in ("upload", "stage") or not draw(st.integers(0, 4)):
            image = images.create()
            pool.append(image["id"])
            image_id = image["id"]
        else:
            # An index, not sampled_from(pool): the pool grows between examples.
            choices = [*pool, "no-such-image"]
            image_id = choices[draw(st.integers(0, 10_000)) % len(choices)]
        if kind in ("upload", "stage"):
            path = f"/images/{image_id}/{'file' if kind == 'upload' else 'stage'}"
            result = images.request("PUT", path, raw=DATA, content_type=OCTET, headers=headers)
            _check(images, result, f"PUT {path} {headers}")
            if kind == "stage" and result.status_code == 204:
                kind = "import"
        if kind == "import":
            body = draw(import_body())
            path = f"/images/{image_id}/import"
            result = images.request(
                "POST",
                path,
                raw=json.dumps(body),
                content_type="application/json",
                headers=headers,
            )
            _check(images, result, f"POST {path} {body} {headers}")
        elif kind == "remove":
            store = draw(st.sampled_from(STORE_IDS))
            path = f"/stores/{store}/{image_id}"
            result = images.request("DELETE", path)
            _check(images, result, f"DELETE {path}")

    exercise()
    # Every file in a store is an image's data that the image says is there
    # (or its staged data).
    for store, names in _store_files(conf).items():
        for name in names:
            shown = images.request("GET", f"/images/{name}")
            assert shown.status_code == 200, (store, name)
            if shown.json["status"] == "uploading":
                continue  # staged data, for an import to come
            assert store in shown.json.get("stores", "").split(","), (store, shown.json)
