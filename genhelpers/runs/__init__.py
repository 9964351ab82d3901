"""Headless runs of the notebook collection with papermill, in parallel, and the report they leave."""
from .report import compare, write_report
from .runner import load_profiles, run_collection, run_jobs, run_notebook

__all__ = ["compare", "load_profiles", "run_collection", "run_jobs", "run_notebook", "write_report"]
