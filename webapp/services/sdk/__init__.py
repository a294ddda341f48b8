"""The SDK side: identify and traits, request parsing, compiled snapshots, the fast read and OFREP
(blueprints ``sdk_api`` and ``ofrep``).
"""
