"""Segments: definitions, segment overrides and SQL membership (blueprint ``segments``).
"""
