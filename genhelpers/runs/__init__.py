"""Headless runs of the notebook collection with papermill, and the report they leave."""
from .report import write_report
from .runner import load_profiles, run_collection, run_notebook

__all__ = ["load_profiles", "run_collection", "run_notebook", "write_report"]
