"""Pipelines diffusers lacks, written here as plain importable classes (never hub code)."""
from .mvdream import MultiViewUNetModel, MVDreamPipeline
from .zero123plus import Zero123PlusPipeline

__all__ = ["MVDreamPipeline", "MultiViewUNetModel", "Zero123PlusPipeline"]
