"""Flagsmith environment documents: import (SPEC §4) and export, one public surface.

The work lives in ``exporting``, ``importing`` (with ``import_rows``) and
``validation``, split to keep modules small; callers import from here.
"""

from .exporting import build_environment_document, export_environment
from .importing import ImportResult, count_items, import_environment_document
from .validation import DocumentRecord, parse_document

__all__ = [
    "DocumentRecord",
    "ImportResult",
    "build_environment_document",
    "count_items",
    "export_environment",
    "import_environment_document",
    "parse_document",
]
