"""Deterministic percentage buckets, identical to Flagsmith's md5 scheme."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from hashlib import md5 as _openssl_md5
from typing import Any

try:
    # CPython's built-in md5 skips OpenSSL's per-call EVP setup: about twice as
    # fast on the short inputs hashed here, same digest.
    md5: Callable[[bytes], Any] = importlib.import_module("_md5").md5
except ImportError:  # pragma: no cover - interpreters built without it
    md5 = _openssl_md5

_MODULUS = 9999
_SCALE = 9998


def hashed_percentage(ids: Sequence[object]) -> float:
    """Return the bucket in [0, 100) of a list of ids.

    Joins ``str(id)`` with ``","``, reads the md5 as an integer ``n`` and returns
    ``(n % 9999) / 9998 * 100``; an exact 100 retries with the list repeated.

    :param ids: the ids to hash, in order
    :return: a float in [0, 100)
    """
    return hashed_percentage_of_text(",".join([str(id_) for id_ in ids]))


def hashed_percentage_of_text(text: str) -> float:
    """Return the bucket of an id list already joined with ``","`` (the hot path).

    :param text: the ids joined with ``","``
    :return: a float in [0, 100)
    """
    return hashed_percentage_of_bytes(text.encode("utf-8"))


def hashed_percentage_of_bytes(data: bytes) -> float:
    """Return the bucket of an id list already joined with ``","`` and UTF-8 encoded.

    :param data: the encoded, joined ids
    :return: a float in [0, 100)
    """
    number = int.from_bytes(md5(data).digest(), "big") % _MODULUS
    if number != _SCALE:
        return number / _SCALE * 100
    return _retry(data.decode("utf-8"))


def _retry(text: str) -> float:
    # Flagsmith keeps results below 100 by hashing the id list repeated (then
    # tripled, ...); joining the joined text again yields exactly that string.
    iterations = 2
    while True:
        repeated = ",".join([text] * iterations)
        number = int.from_bytes(md5(repeated.encode("utf-8")).digest(), "big") % _MODULUS
        if number != _SCALE:
            return number / _SCALE * 100
        iterations += 1
