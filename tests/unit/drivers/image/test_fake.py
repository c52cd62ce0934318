"""The ``fake`` image store against the contract, plus its own extras."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from oslo_config import cfg

from nimbus import exception, registry
from nimbus.drivers.image import ImageStore
from nimbus.drivers.image.fake import FakeStore
from nimbus.testing.image_store import ImageStoreContract


class TestFakeStore(ImageStoreContract):
    stores_in_memory = True

    @pytest.fixture
    def store(self, conf: cfg.ConfigOpts) -> FakeStore:
        return FakeStore(conf)

    @pytest.fixture
    def partial_writes(self, store: FakeStore) -> Callable[[], set[str]]:
        return store.ex_partial_writes


def test_loads_through_its_entry_point(conf: cfg.ConfigOpts) -> None:
    store = registry.load_driver("nimbus.image.stores", "fake", conf, expected=ImageStore)
    assert isinstance(store, FakeStore)


def test_upload_in_progress_is_listed(conf: cfg.ConfigOpts) -> None:
    store = FakeStore(conf)
    seen = []

    def chunks() -> Iterator[bytes]:
        yield b"abc"
        seen.append(store.ex_partial_writes())

    store.add("image-1", chunks())
    assert [{name.split(".")[0] for name in names} for names in seen] == [{"image-1"}]
    assert store.ex_partial_writes() == set()


def test_size_limit_raises_storage_full_and_keeps_nothing(conf: cfg.ConfigOpts) -> None:
    store = FakeStore(conf, size_limit=10_000)
    kept = store.add("kept", [b"k" * 4000])
    assert store.capacity().total == 10_000
    assert store.capacity().free == 6000
    with pytest.raises(exception.StorageFull) as info:
        store.add("too-big", [b"x" * 3000] * 3)
    assert info.value.kwargs["store"] == "fake"
    assert store.ex_partial_writes() == set()
    assert store.capacity().free == 6000
    with store.get(kept.location) as reader:
        assert reader.read() == b"k" * 4000


def test_capacity_is_unknown_without_a_limit(conf: cfg.ConfigOpts) -> None:
    capacity = FakeStore(conf).capacity()
    assert (capacity.total, capacity.free) == (None, None)


def test_negative_ranges_are_refused(conf: cfg.ConfigOpts) -> None:
    store = FakeStore(conf)
    location = store.add("image", [b"data"]).location
    with pytest.raises(exception.ValidationError):
        store.get(location, offset=-1)
    with pytest.raises(exception.ValidationError):
        store.get(location, length=-1)


def test_delete_refuses_a_foreign_location(conf: cfg.ConfigOpts) -> None:
    with pytest.raises(exception.DriverError):
        FakeStore(conf).delete("file:///var/lib/nimbus/images/x")


def test_open_reader_keeps_the_data_it_was_opened_on(conf: cfg.ConfigOpts) -> None:
    store = FakeStore(conf)
    old = store.add("image", [b"old data"])
    with store.get(old.location) as reader:
        store.add("image", [b"new data"])
        assert reader.read() == b"old data"
