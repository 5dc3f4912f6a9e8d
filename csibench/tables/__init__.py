"""Published tables csibench reproduces, one module per seed paper (``paper_NNN.py`` with a ``TABLES`` list)."""

from __future__ import annotations

import importlib
import pkgutil

from csibench.errors import UsageError, suggest
from csibench.tables.base import Cell, CellResult, PublishedTable, counted, evaluate, mega


def all_tables() -> dict[str, PublishedTable]:
    tables: dict[str, PublishedTable] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("paper_"):
            for table in importlib.import_module(f"csibench.tables.{info.name}").TABLES:
                tables[table.id] = table
    return tables


def get_table(table_id: str) -> PublishedTable:
    tables = all_tables()
    if table_id not in tables:
        raise UsageError(f"unknown table {table_id!r}; {suggest(table_id, sorted(tables))}")
    return tables[table_id]


__all__ = ["Cell", "CellResult", "PublishedTable", "all_tables", "counted", "evaluate", "get_table", "mega"]
