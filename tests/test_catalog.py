import diffusers
import pytest
import transformers

from genhelpers.hub import catalog, classes
from genhelpers.twins import registry


@pytest.mark.parametrize("key", sorted(catalog.ENTRIES))
def test_entry_is_complete(key):
    e = catalog.ENTRIES[key]
    assert classes.own(e.cls) or any(hasattr(lib, e.cls) for lib in (diffusers, transformers)), e.cls
    assert e.key in registry.BUILDERS  # every published model has an offline twin for the smoke tier
    assert e.licence and e.licence_url.startswith("https://") and "/" in e.repo
    assert e.params and all(n > 0 for n in e.params.values())


def test_lookup_by_key_repo_and_twin():
    assert catalog.find("sdxl-base").repo == "stabilityai/stable-diffusion-xl-base-1.0"
    assert catalog.find("StabilityAI/Stable-Diffusion-XL-Base-1.0").key == "sdxl-base"
    assert catalog.find("tiny:shap-e").cls == "ShapEPipeline"
    assert catalog.find("someone/else") is None and catalog.find(None) is None
