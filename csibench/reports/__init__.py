"""Reports of study runs: generic tables for any set of models plus the seed papers' layouts as templates.

``write_study_report(db_path, out_dir, select)`` is the entry point; ``Table``/``Column`` are the typed table model.
"""

from csibench.reports.study import list_runs, load_study, write_study_report
from csibench.reports.table import Column, Row, Table

__all__ = ["Column", "Row", "Table", "list_runs", "load_study", "write_study_report"]
