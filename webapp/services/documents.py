"""Flagsmith environment documents: import (SPEC §4) and export, one public surface.

The work lives in ``documents_export``, ``documents_import`` (with ``documents_rows``) and
``documents_validation``, split to keep modules small; callers import from here.
"""

from .documents_export import build_environment_document, export_environment
from .documents_import import ImportResult, count_items, import_environment_document
from .documents_validation import DocumentRecord, parse_document

__all__ = [
    "DocumentRecord",
    "ImportResult",
    "build_environment_document",
    "count_items",
    "export_environment",
    "import_environment_document",
    "parse_document",
]
