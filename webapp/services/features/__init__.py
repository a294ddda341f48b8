"""Features: the catalogue and default states, options and overrides (blueprint ``features``).
"""
