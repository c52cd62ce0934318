"""Tests of the Fernet key repository: set-up, rotation, reloading."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import threading

import pytest
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from oslo_config import cfg

from nimbus.identity.token.keys import KeyRepository, KeyRepositoryError, repository_path


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def path(tmp_path) -> str:
    return str(tmp_path / "fernet-keys")


@pytest.fixture
def repo(path: str, clock: FakeClock) -> KeyRepository:
    repository = KeyRepository(path, 3, clock=clock)
    repository.initialize()
    return repository


def _contents(path: str) -> dict[int, bytes]:
    keys = {}
    for name in os.listdir(path):
        if name.isdigit():
            with open(os.path.join(path, name), "rb") as f:
                keys[int(name)] = f.read()
    return keys


def _mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _encrypt_with(key: bytes, data: bytes = b"payload") -> bytes:
    return Fernet(key).encrypt(data)


# -- initialize --------------------------------------------------------------


def test_initialize_creates_staged_and_primary_keys(path: str) -> None:
    repository = KeyRepository(path)

    assert repository.initialize() == [0, 1]

    assert sorted(os.listdir(path)) == ["0", "1"]
    keys = _contents(path)
    assert keys[0] != keys[1]
    for key in keys.values():
        Fernet(key)  # a valid key
    assert repository.key_numbers() == (1, 0)


def test_initialize_sets_private_permissions(path: str) -> None:
    KeyRepository(path).initialize()

    assert _mode(path) == 0o700
    for name in ("0", "1"):
        assert _mode(os.path.join(path, name)) == 0o600


def test_initialize_is_idempotent(path: str) -> None:
    repository = KeyRepository(path)
    repository.initialize()
    before = _contents(path)

    assert repository.initialize() == []
    assert KeyRepository(path).initialize() == []

    assert _contents(path) == before


def test_initialize_fills_an_existing_empty_directory(tmp_path) -> None:
    directory = tmp_path / "keys"
    directory.mkdir()

    assert KeyRepository(str(directory)).initialize() == [0, 1]
    assert sorted(_contents(str(directory))) == [0, 1]


def test_initialize_leaves_a_rotated_repository_alone(repo: KeyRepository, path: str) -> None:
    repo.rotate()
    before = _contents(path)

    assert repo.initialize() == []
    assert _contents(path) == before


# -- rotate ------------------------------------------------------------------


def test_rotation_step_by_step(repo: KeyRepository, path: str) -> None:
    initial = _contents(path)

    first = repo.rotate()

    after_first = _contents(path)
    assert sorted(after_first) == [0, 1, 2]
    assert first.primary == 2
    assert first.removed == ()
    assert first.active == (2, 1, 0)
    assert after_first[2] == initial[0], "the staged key becomes the primary"
    assert after_first[1] == initial[1]
    assert after_first[0] not in initial.values(), "a new key is staged"

    second = repo.rotate()

    after_second = _contents(path)
    assert sorted(after_second) == [0, 2, 3]
    assert second.primary == 3
    assert second.removed == (1,), "the lowest secondary key goes"
    assert after_second[3] == after_first[0]
    assert after_second[2] == after_first[2]

    third = repo.rotate()

    assert sorted(_contents(path)) == [0, 3, 4]
    assert third.removed == (2,)


@pytest.mark.parametrize("max_active_keys", [2, 3, 5])
def test_rotation_keeps_max_active_keys(path: str, max_active_keys: int) -> None:
    repository = KeyRepository(path, max_active_keys)
    repository.initialize()

    for rotation in range(1, 9):
        result = repository.rotate()
        numbers = sorted(_contents(path))
        assert len(numbers) == min(2 + rotation, max_active_keys)
        assert numbers[0] == 0
        assert numbers[-1] == result.primary == rotation + 1
        assert tuple(sorted(result.active)) == tuple(numbers)


def test_rotated_key_files_are_private_and_no_temporary_file_is_left(
    repo: KeyRepository, path: str
) -> None:
    for _ in range(4):
        repo.rotate()

    names = os.listdir(path)
    assert all(name.isdigit() for name in names), names
    for name in names:
        assert _mode(os.path.join(path, name)) == 0o600


def test_rotate_refuses_fewer_than_two_active_keys(path: str) -> None:
    repository = KeyRepository(path, 1)
    repository.initialize()

    with pytest.raises(KeyRepositoryError, match="max_active_keys must be at least 2"):
        repository.rotate()

    assert sorted(_contents(path)) == [0, 1]


def test_rotate_without_a_staged_key_stages_one(repo: KeyRepository, path: str) -> None:
    os.unlink(os.path.join(path, "0"))
    primary = _contents(path)[1]

    result = repo.rotate()

    assert result.primary == 1
    keys = _contents(path)
    assert sorted(keys) == [0, 1]
    assert keys[1] == primary


def test_rotate_a_missing_repository_says_how_to_fix_it(tmp_path) -> None:
    missing = str(tmp_path / "nowhere")

    with pytest.raises(KeyRepositoryError) as info:
        KeyRepository(missing).rotate()

    assert missing in str(info.value)
    assert "nimbus fernet setup" in str(info.value)
    assert not os.path.exists(missing)


def test_rotate_an_empty_repository_says_how_to_fix_it(tmp_path) -> None:
    directory = tmp_path / "keys"
    directory.mkdir()

    with pytest.raises(KeyRepositoryError) as info:
        KeyRepository(str(directory)).rotate()

    assert str(directory) in str(info.value)
    assert "nimbus fernet setup" in str(info.value)


# -- encrypting and decrypting ----------------------------------------------


def test_crypter_encrypts_with_the_primary_key(repo: KeyRepository, path: str) -> None:
    repo.rotate()
    keys = _contents(path)

    token = repo.crypter().encrypt(b"x")

    assert Fernet(keys[2]).decrypt(token) == b"x"
    for other in (0, 1):
        with pytest.raises(InvalidToken):
            Fernet(keys[other]).decrypt(token)


def test_staged_key_decrypts_before_it_is_primary(repo: KeyRepository, path: str) -> None:
    # Another node that already rotated encrypts with what is our key 0.
    staged = _contents(path)[0]
    token = _encrypt_with(staged)

    assert repo.crypter().decrypt(token) == b"payload"


def test_token_of_the_oldest_key_stops_decrypting_once_rotated_out(
    repo: KeyRepository, path: str
) -> None:
    token = repo.crypter().encrypt(b"old")  # primary key 1

    repo.rotate()  # keys 0, 1, 2
    assert repo.crypter().decrypt(token) == b"old"

    repo.rotate()  # keys 0, 2, 3: key 1 is gone
    with pytest.raises(InvalidToken):
        repo.crypter().decrypt(token)


def test_crypter_is_a_multifernet_primary_first_staged_last(repo: KeyRepository, path: str) -> None:
    repo.rotate()
    repo.rotate()
    keys = _contents(path)

    crypter = repo.crypter()

    assert isinstance(crypter, MultiFernet)
    assert repo.key_numbers() == (3, 2, 0)
    # Each key in the listed order decrypts what it encrypted.
    for number in (3, 2, 0):
        assert crypter.decrypt(_encrypt_with(keys[number])) == b"payload"


def test_load_returns_key_material_highest_first(repo: KeyRepository, path: str) -> None:
    repo.rotate()

    loaded = repo.load()

    assert list(loaded) == [2, 1, 0]
    assert loaded == {n: key for n, key in _contents(path).items()}


# -- reloading -----------------------------------------------------------------


def test_second_instance_sees_rotation_after_refresh_interval(
    repo: KeyRepository, path: str, clock: FakeClock
) -> None:
    reader = KeyRepository(path, 3, clock=clock, refresh_interval=1.0)
    old_token = reader.crypter().encrypt(b"old")  # primary 1
    assert reader.key_numbers() == (1, 0)

    repo.rotate()
    repo.rotate()  # key 1 removed

    clock.advance(0.5)
    assert reader.key_numbers() == (1, 0), "not looked at again within the interval"
    assert reader.crypter().decrypt(old_token) == b"old"

    clock.advance(0.5)
    assert reader.key_numbers() == (3, 2, 0)
    with pytest.raises(InvalidToken):
        reader.crypter().decrypt(old_token)
    # And it now encrypts with the new primary.
    assert Fernet(_contents(path)[3]).decrypt(reader.crypter().encrypt(b"new")) == b"new"


def test_keys_are_served_from_memory_between_checks(
    repo: KeyRepository, path: str, clock: FakeClock
) -> None:
    token = repo.crypter().encrypt(b"x")
    shutil.rmtree(path)  # no file can be read any more

    for _ in range(100):
        assert repo.crypter().decrypt(token) == b"x"


def test_reload_failure_keeps_the_last_good_keys(
    repo: KeyRepository, path: str, clock: FakeClock, caplog
) -> None:
    token = repo.crypter().encrypt(b"x")
    shutil.rmtree(path)
    clock.advance(5)

    with caplog.at_level(logging.WARNING):
        assert repo.crypter().decrypt(token) == b"x"

    assert "Keeping the Fernet keys loaded before" in caplog.text
    assert path in caplog.text


def test_rotation_in_the_same_process_is_seen_at_once(repo: KeyRepository) -> None:
    assert repo.key_numbers() == (1, 0)
    repo.rotate()
    assert repo.key_numbers() == (2, 1, 0)


def test_unchanged_repository_is_not_reloaded(
    repo: KeyRepository, clock: FakeClock, monkeypatch
) -> None:
    repo.crypter()
    reads = []
    original = repo._read_keys
    monkeypatch.setattr(repo, "_read_keys", lambda: reads.append(1) or original())

    for _ in range(5):
        clock.advance(2)
        repo.crypter()

    assert reads == []


def test_concurrent_reader_always_sees_a_usable_set_of_keys(path: str) -> None:
    writer = KeyRepository(path, 3)
    writer.initialize()
    reader = KeyRepository(path, 3)
    failures: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                keys = reader.load()
            except KeyRepositoryError as ex:
                failures.append(str(ex))
                continue
            if 0 not in keys or len(keys) < 2:
                failures.append(f"incomplete set {sorted(keys)}")

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for _ in range(60):
            writer.rotate()
    finally:
        stop.set()
        thread.join()

    assert failures == []


# -- errors --------------------------------------------------------------------


def test_missing_repository_names_path_and_command(tmp_path) -> None:
    missing = str(tmp_path / "nowhere")

    with pytest.raises(KeyRepositoryError) as info:
        KeyRepository(missing).crypter()

    message = str(info.value)
    assert missing in message
    assert "does not exist" in message
    assert "nimbus fernet setup" in message


def test_empty_repository_names_path_and_command(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README").write_text("not a key")

    with pytest.raises(KeyRepositoryError) as info:
        KeyRepository(str(empty)).load()

    assert str(empty) in str(info.value)
    assert "no keys" in str(info.value)
    assert "nimbus fernet setup" in str(info.value)


def test_invalid_key_file_is_named_without_its_content(repo: KeyRepository, path: str) -> None:
    with open(os.path.join(path, "1"), "wb") as f:
        f.write(b"not-a-fernet-key-SECRETISH")

    with pytest.raises(KeyRepositoryError) as info:
        KeyRepository(path).crypter()

    assert "key file 1" in str(info.value)
    assert "SECRETISH" not in str(info.value)


def test_files_that_are_not_keys_are_ignored(repo: KeyRepository, path: str) -> None:
    for name in ("README", ".new-key-abc", "01", "2.bak"):
        with open(os.path.join(path, name), "w") as f:
            f.write("junk")

    assert list(KeyRepository(path).load()) == [1, 0]


def test_key_with_trailing_newline_is_accepted(repo: KeyRepository, path: str) -> None:
    key = _contents(path)[1]
    with open(os.path.join(path, "1"), "wb") as f:
        f.write(key + b"\n")

    assert KeyRepository(path).load()[1] == key


# -- configuration -------------------------------------------------------------


def test_repository_path_defaults_to_the_state_directory(conf: cfg.ConfigOpts) -> None:
    assert repository_path(conf) == os.path.join(conf.state_path, "fernet-keys")


def test_from_conf_uses_the_fernet_tokens_options(conf: cfg.ConfigOpts) -> None:
    repository = KeyRepository.from_conf(conf)

    assert repository.path == os.path.join(conf.state_path, "fernet-keys")
    assert repository.max_active_keys == conf.fernet_tokens.max_active_keys
