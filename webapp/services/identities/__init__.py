"""Identities: the Identity page, its flags, search, traits, overrides and QA links (blueprints
``identities`` and ``users``).
"""
