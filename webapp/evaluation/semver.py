"""Strict SemVer 2.0 parsing and precedence, matching the ``semver`` package the engine uses."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

SEMVER_SUFFIX = ":semver"

_PRERELEASE_ID = r"(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
_BUILD_ID = r"[0-9a-zA-Z-]+"
_SEMVER_RE = re.compile(
    rf"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    rf"(?:-(?P<prerelease>{_PRERELEASE_ID}(?:\.{_PRERELEASE_ID})*))?"
    rf"(?:\+(?P<build>{_BUILD_ID}(?:\.{_BUILD_ID})*))?\Z",
    re.ASCII,
)


class Version(NamedTuple):
    """A parsed semantic version."""

    major: int
    minor: int
    patch: int
    prerelease: str | None
    build: str | None


def has_semver_suffix(value: str | None) -> bool:
    """Return True when a condition value asks for a semantic-version comparison."""
    return value is not None and value[-7:] == SEMVER_SUFFIX


@lru_cache(maxsize=4096)
def parse_version(text: str) -> Version | None:
    """Parse a strict ``MAJOR.MINOR.PATCH[-pre][+build]`` version, or return None."""
    match = _SEMVER_RE.match(text)
    if match is None:
        return None
    return Version(
        int(match["major"]),
        int(match["minor"]),
        int(match["patch"]),
        match["prerelease"],
        match["build"],
    )


def compare_versions(left: Version, right: Version) -> int:
    """Return -1, 0 or 1 by SemVer precedence; build metadata is ignored."""
    core = _cmp(left[:3], right[:3])
    if core:
        return core
    pre_cmp = _cmp(_prerelease_key(left.prerelease), _prerelease_key(right.prerelease))
    if not pre_cmp:
        return 0
    # A release sorts after any of its pre-releases.
    if not left.prerelease:
        return 1
    if not right.prerelease:
        return -1
    return pre_cmp


def version_contains(version: Version, text: str) -> bool:
    """Mirror ``text in semver.Version``: it iterates the parts, so only the
    pre-release or build string can equal a text."""
    return text == version.prerelease or text == version.build


def _prerelease_key(prerelease: str | None) -> list[tuple[int, int, str]]:
    keys = []
    for identifier in (prerelease or "").split("."):
        if identifier.isdigit():
            normalized = identifier.lstrip("0") or "0"
            keys.append((0, len(normalized), normalized))
        else:
            keys.append((1, 0, identifier))
    return keys


def _cmp(left: object, right: object) -> int:
    return int(left > right) - int(left < right)  # type: ignore[operator]
