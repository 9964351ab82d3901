import json
import os
import shutil
import sys
import types
from pathlib import Path

import pytest

from genhelpers.weights import WeightsNotFound, hub_patterns, kind_of, resolve


def fake_hub_snapshot(repo: str, source: Path) -> Path:
    """Lay ``source`` out in the Hugging Face cache exactly as huggingface_hub does after a download."""
    cache = Path(os.environ["HF_HUB_CACHE"]) / ("models--" + repo.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = cache / "snapshots" / commit
    if not snap.exists():
        shutil.copytree(source, snap)
        (cache / "refs").mkdir(parents=True, exist_ok=True)
        (cache / "refs" / "main").write_text(commit)
    return snap


def diffusers_folder(root: Path, weight_name="diffusion_pytorch_model.safetensors") -> Path:
    (root / "unet").mkdir(parents=True)
    (root / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline",
                                                       "unet": ["diffusers", "UNet2DConditionModel"]}))
    (root / "unet" / "config.json").write_text("{}")
    (root / "unet" / weight_name).write_bytes(b"x")
    return root


@pytest.mark.parametrize("ref, kind", [
    ("tiny:sdxl-base", "tiny"),
    ("kaggle:stabilityai/sdxl/diffusers/base", "kaggle"),
    ("sdxl-base", "catalog"),
    ("stabilityai/stable-diffusion-xl-base-1.0", "catalog"),
    ("someone/my-sdxl-finetune", "hub"),
])
def test_reference_kinds(ref, kind):
    assert kind_of(ref) == kind


@pytest.mark.parametrize("ref, message", [
    ("sdxl", "not a model reference genhelpers knows.*sdxl-base.*'owner/name'"),
    ("", "empty"),
    (None, "empty"),
    ("tiny:sd14", "no tiny twin by that name.*'tiny:sdxl-base'"),
    ("./no/such/folder", "looks like a folder but it does not exist"),
])
def test_unknown_references_are_refused_with_the_forms_that_work(ref, message):
    with pytest.raises(ValueError, match=message):
        kind_of(ref)


def test_explicit_folder(tmp_path):
    folder = diffusers_folder(tmp_path / "my-model")
    r = resolve(str(folder))
    assert (r.source, r.path) == ("path", folder.resolve())


def test_pickle_only_folder_is_refused_unless_allowed(tmp_path):
    folder = diffusers_folder(tmp_path / "old", weight_name="diffusion_pytorch_model.bin")
    with pytest.raises(ValueError, match=r"only pickle weights \(diffusion_pytorch_model.bin\).*allow_pickle=True"):
        resolve(str(folder))
    assert resolve(str(folder), allow_pickle=True).path == folder.resolve()


def test_kaggle_dataset_named_after_the_repository(kaggle_input):
    folder = diffusers_folder(kaggle_input / "stable-diffusion-xl-base-1-0")
    r = resolve("stabilityai/stable-diffusion-xl-base-1.0")
    assert (r.source, r.path, r.entry.key) == ("kaggle-input", folder, "sdxl-base")
    assert resolve("sdxl-base").path == folder  # catalog key -> same repository -> same mount


def test_kaggle_model_mount_nested_layout(kaggle_input):
    """Kaggle Models mount <slug>/<framework>/<variation>/<version>/; the diffusers folder is found inside."""
    folder = diffusers_folder(kaggle_input / "stable-diffusion-xl-refiner-1.0" / "diffusers" / "refiner" / "1")
    assert resolve("sdxl-refiner").path == folder


def test_kaggle_mount_of_a_pickle_only_folder_is_refused(kaggle_input):
    diffusers_folder(kaggle_input / "my-finetune", weight_name="diffusion_pytorch_model.bin")
    with pytest.raises(ValueError, match="only pickle weights"):
        resolve("someone/my-finetune")


def test_kagglehub_reference(tmp_path, monkeypatch):
    folder = diffusers_folder(tmp_path / "kh")
    calls = []
    fake = types.SimpleNamespace(model_download=lambda handle: calls.append(handle) or str(folder))
    monkeypatch.setitem(sys.modules, "kagglehub", fake)
    r = resolve("kaggle:owner/sdxl/diffusers/base")
    assert (r.source, r.path, calls) == ("kagglehub", folder, ["owner/sdxl/diffusers/base"])


def test_kagglehub_missing_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "kagglehub", None)  # import fails
    with pytest.raises(WeightsNotFound, match="kagglehub is not installed"):
        resolve("kaggle:owner/sdxl/diffusers/base")


def test_offline_miss_lists_every_way_to_provide_weights():
    with pytest.raises(WeightsNotFound) as e:
        resolve("sdxl-base")
    msg = str(e.value)
    assert "HF_HUB_OFFLINE=1" in msg
    for way in ("model='/path/to/folder'", "'stable-diffusion-xl-base-1-0'", os.environ["GENHELPERS_KAGGLE_INPUT"],
                "kaggle:<owner>", "Internet on", "model='tiny:sdxl-base'"):
        assert way in msg, way


def test_offline_hub_cache_hit_uses_the_real_hub_code(twins):
    snap = fake_hub_snapshot("acme/tiny-sdxl", twins["sdxl-base"])
    r = resolve("acme/tiny-sdxl", variant="fp16")
    assert (r.source, r.path) == ("hf-hub", snap)
    assert "fp16" in r.variants()


def test_hub_download_patterns_skip_what_we_never_load():
    index = {"_class_name": "StableDiffusionXLPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"], "image_encoder": [None, None]}
    pats = hub_patterns(index, "fp16", allow_pickle=False)
    assert "unet/*.fp16.safetensors" in pats and "vae/config.json" not in pats and "vae/*.json" in pats
    assert not any(p.startswith("image_encoder") for p in pats)
    import fnmatch

    def wanted(name):
        return any(fnmatch.fnmatch(name, p) for p in pats)

    assert wanted("unet/diffusion_pytorch_model.fp16.safetensors")
    assert not wanted("unet/diffusion_pytorch_model.safetensors")  # the fp32 copy: 10 GB we do not need
    assert not wanted("sd_xl_base_1.0.safetensors")  # the single-file checkpoint
    assert not wanted("unet/diffusion_pytorch_model.fp16.bin")
    assert not wanted("unet/diffusion_flax_model.msgpack")
    single = hub_patterns(None, None, allow_pickle=False)
    assert single == ["config.json", "*.safetensors"]
    assert "unet/*.bin" in hub_patterns(index, None, allow_pickle=True)


def test_resolve_never_loads_anything(monkeypatch, twins):
    """Resolution only finds files: diffusers' loader must not be touched."""
    import diffusers

    monkeypatch.setattr(diffusers.DiffusionPipeline, "from_pretrained",
                        classmethod(lambda *a, **k: pytest.fail("loaded a model")))
    assert resolve("tiny:sdxl-base").path == twins["sdxl-base"]


def test_hub_download_skips_components_the_caller_replaces():
    index = {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"],
             "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"]}
    pats = hub_patterns(index, None, allow_pickle=False, only={"unet", "vae", "motion_adapter"})
    assert "unet/*.safetensors" in pats and not any(p.startswith("safety_checker") for p in pats)


def test_load_asks_the_hub_only_for_what_it_will_use(monkeypatch, cpu_runtime, twins):
    """The SDXL refiner joins the base with the base's text_encoder_2 and VAE: their copies in the refiner
    repository (1.6 GB in fp16) must not be downloaded; AnimateDiff built on SD1.5 skips the safety checker."""
    import genhelpers
    from genhelpers import weights as w

    asked = []
    real = w.resolve

    def spy(ref, variant=None, allow_pickle=False, only=None):
        asked.append((ref, None if only is None else sorted(only)))
        return real(ref, variant, allow_pickle, only)

    monkeypatch.setattr(w, "resolve", spy)
    base = genhelpers.load("tiny:sdxl-base", cpu_runtime, quiet=True)
    genhelpers.load("tiny:sdxl-refiner", cpu_runtime, quiet=True, text_encoder_2=base.text_encoder_2, vae=base.vae)
    refiner_only = dict(asked)["tiny:sdxl-refiner"]
    assert "unet" in refiner_only and "text_encoder_2" not in refiner_only and "vae" not in refiner_only
    genhelpers.load("tiny:sd15", cpu_runtime, pipeline="AnimateDiffPipeline", quiet=True,
                    motion_adapter="tiny:animatediff-motion-adapter-v1-5-2")
    sd15_only = dict(asked)["tiny:sd15"]
    assert "safety_checker" not in sd15_only and "unet" in sd15_only
