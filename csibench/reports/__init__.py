"""Comparison tables in the layouts the seed papers use."""

from csibench.reports.preamble import preamble
from csibench.reports.render import write_report
from csibench.reports.tables import Table, build_tables

__all__ = ["Table", "build_tables", "preamble", "write_report"]
