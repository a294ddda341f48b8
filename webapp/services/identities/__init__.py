"""Identities: the Identity page, its flags, search, traits, overrides and QA links
(blueprints ``identities`` and ``users``).

``Identity`` and ``Feature`` are re-exported for the pages' type hints: pages never import
``webapp.models``.
"""

from ...models import Feature, Identity

__all__ = ["Feature", "Identity"]
