"""Pipelines diffusers lacks, written here as plain importable classes (never hub code)."""
from .zero123plus import Zero123PlusPipeline

__all__ = ["Zero123PlusPipeline"]
