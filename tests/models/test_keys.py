"""Environment keys as people pass them on: never mistaken for a command-line option."""

from __future__ import annotations

from webapp.models.organisation import new_client_key, new_server_key


def test_client_keys__many__none_starts_with_a_dash() -> None:
    # Given 3,000 new keys (one random key in 64 would start with "-")
    keys = [new_client_key() for _ in range(3000)]

    # Then none can be taken for an option, and each is a 22-character key
    assert not [key for key in keys if key.startswith("-")]
    assert {len(key) for key in keys} == {22}
    assert len(set(keys)) == len(keys)


def test_server_keys__start_with_their_prefix() -> None:
    assert all(new_server_key().startswith("ser.") for _ in range(200))
