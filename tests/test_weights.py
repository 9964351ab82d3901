import json
import os
import shutil
import sys
import types
from pathlib import Path

import pytest

from genhelpers.hub.weights import WeightsNotFound, choose_weights, hub_token, kind_of, resolve, select_files


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
    ("kaggle:stabilityai/sdxl/diffusers/base/3", "kaggle"),
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
    ("kaggle:sdxl", "not a Kaggle Models handle.*<owner>/<model>/<framework>/<variation>/<version>"),
    ("kaggle:a/b/c/d/e/f", "not a Kaggle Models handle"),
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
    with pytest.raises(ValueError, match=r"old: unet publishes pickle weights only.*allow_pickle=True.*trust"):
        resolve(str(folder))
    assert resolve(str(folder), allow_pickle=True).path == folder.resolve()


def test_a_single_model_folder_of_pickles_is_named_as_the_repository(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"0")
    with pytest.raises(ValueError, match=r"clip: the repository publishes pickle weights only"):
        resolve(str(folder))


def test_one_pickle_only_component_is_named(tmp_path):
    """Zeroscope-style: every component folder pickle-only; a pipeline where only one is, is refused as well."""
    folder = tmp_path / "pipe"
    for comp, name in (("unet", "diffusion_pytorch_model.bin"), ("vae", "diffusion_pytorch_model.safetensors")):
        (folder / comp).mkdir(parents=True)
        (folder / comp / "config.json").write_text("{}")
        (folder / comp / name).write_bytes(b"0")
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline",
                                                         "unet": ["diffusers", "UNet2DConditionModel"],
                                                         "vae": ["diffusers", "AutoencoderKL"]}))
    with pytest.raises(ValueError, match=r"pipe: unet publishes pickle weights only"):
        resolve(str(folder))
    # a component the caller passes in is never read from the folder: its pickles do not count (Karlo's image
    # variations: every part but the schedulers comes from elsewhere)
    assert resolve(str(folder), only={"vae"}).path == folder.resolve()
    with pytest.raises(ValueError, match=r"pipe: unet publishes pickle weights only"):
        resolve(str(folder), only={"unet", "vae"})


def test_kaggle_dataset_named_after_the_repository(kaggle_input):
    folder = diffusers_folder(kaggle_input / "stable-diffusion-xl-base-1-0")
    r = resolve("stabilityai/stable-diffusion-xl-base-1.0")
    assert (r.source, r.path, r.entry.key) == ("kaggle-input", folder, "sdxl-base")
    assert resolve("sdxl-base").path == folder  # catalog key -> same repository -> same mount


def test_kaggle_model_mount_nested_layout(kaggle_input):
    """Kaggle Models mount <slug>/<framework>/<variation>/<version>/; the diffusers folder is found inside."""
    folder = diffusers_folder(kaggle_input / "stable-diffusion-xl-refiner-1.0" / "diffusers" / "refiner" / "1")
    assert resolve("sdxl-refiner").path == folder


def test_kaggle_todays_dataset_and_model_mounts(kaggle_input):
    """Today's layout: /kaggle/input/datasets/<owner>/<slug>/… and
    /kaggle/input/models/<owner>/<model>/<framework>/<variation>/<version>/…; the newest version wins."""
    ds = diffusers_folder(kaggle_input / "datasets" / "alice" / "stable-diffusion-xl-base-1-0")
    assert resolve("sdxl-base").path == ds
    model = kaggle_input / "models" / "stabilityai" / "stable-diffusion-xl-refiner-1.0" / "pytorch" / "default"
    diffusers_folder(model / "1")
    newest = diffusers_folder(model / "2")
    assert resolve("sdxl-refiner").path == newest


def test_kaggle_reference_resolves_to_the_attached_model_folder(kaggle_input, monkeypatch):
    """kaggle:<owner>/<model>/<framework>/<variation>/<version> is the attached mount when there is one, and the
    folder returned is the one that holds model_index.json (here one level down), without calling kagglehub."""
    top = kaggle_input / "models" / "alice" / "sdxl" / "pytorch" / "base" / "1"
    folder = diffusers_folder(top / "sdxl-base")
    monkeypatch.setitem(sys.modules, "kagglehub", None)
    r = resolve("kaggle:alice/sdxl/pytorch/base/1")
    assert (r.source, r.path) == ("kagglehub", folder)


def test_kaggle_mount_of_a_pickle_only_folder_is_refused(kaggle_input):
    diffusers_folder(kaggle_input / "my-finetune", weight_name="diffusion_pytorch_model.bin")
    with pytest.raises(ValueError, match="pickle weights only"):
        resolve("someone/my-finetune")


def test_kagglehub_reference(tmp_path, monkeypatch):
    folder = diffusers_folder(tmp_path / "kh" / "inner")
    calls = []
    fake = types.SimpleNamespace(model_download=lambda handle: calls.append(handle) or str(tmp_path / "kh"))
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


SDXL_BASE_FILES = ["model_index.json", "sd_xl_base_1.0.safetensors", "sd_xl_offset_example-lora_1.0.safetensors",
                   "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                   "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_flax_model.msgpack",
                   "unet/model.onnx", "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
                   "vae/diffusion_pytorch_model.fp16.safetensors", "vae_1_0/diffusion_pytorch_model.safetensors",
                   "image_encoder/config.json", "tokenizer/vocab.json", "tokenizer/merges.txt",
                   "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json"]
SDXL_INDEX = {"_class_name": "StableDiffusionXLPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
              "vae": ["diffusers", "AutoencoderKL"], "tokenizer": ["transformers", "CLIPTokenizer"],
              "image_encoder": [None, None]}


def test_file_selection_takes_one_weight_set_per_component_and_nothing_else():
    got = select_files(SDXL_BASE_FILES, SDXL_INDEX, "fp16", allow_pickle=False)
    assert got == ["model_index.json", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
                   "tokenizer/tokenizer_config.json", "tokenizer/vocab.json", "unet/config.json",
                   "unet/diffusion_pytorch_model.fp16.safetensors", "vae/config.json",
                   "vae/diffusion_pytorch_model.fp16.safetensors"]
    fp32 = select_files(SDXL_BASE_FILES, SDXL_INDEX, None, allow_pickle=False)
    assert "unet/diffusion_pytorch_model.safetensors" in fp32 and not any(".fp16." in f for f in fp32)
    assert select_files(SDXL_BASE_FILES, SDXL_INDEX, None, False, only={"unet"}) == [
        "model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors"]


def test_weights_fall_back_to_the_variant_that_exists():
    """openai/shap-e keeps some components' safetensors only as fp16 (the other copy is a pickle): a float32
    run takes the fp16 safetensors (diffusers upcasts them), never the pickle unless allowed."""
    names = ["config.json", "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.bin"]
    assert choose_weights(names, None, allow_pickle=False) == ["diffusion_pytorch_model.fp16.safetensors"]
    assert choose_weights(["diffusion_pytorch_model.bin"], None, allow_pickle=False) == []
    assert choose_weights(["diffusion_pytorch_model.bin"], None, allow_pickle=True) == ["diffusion_pytorch_model.bin"]
    # sdxl-vae-fp16-fix: no fp16 variant; two single-file copies at the top are not weights a loader reads
    vae = ["config.json", "diffusion_pytorch_model.safetensors", "sdxl_vae.safetensors", "sdxl.vae.safetensors"]
    assert select_files(vae, None, "fp16", False) == ["config.json", "diffusion_pytorch_model.safetensors"]
    # sharded weights come with their index; non-EMA copies are never taken
    shards = ["diffusion_pytorch_model-00001-of-00002.safetensors",
              "diffusion_pytorch_model-00002-of-00002.safetensors",
              "diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.non_ema.safetensors"]
    assert choose_weights(shards, None, False) == shards[:2]
    # T5-XXL (IF's text encoder): fp16 shards are named model.fp16-0000N-of-0000M.safetensors
    t5 = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
          "model.fp16-00001-of-00002.safetensors", "model.fp16-00002-of-00002.safetensors"]
    assert choose_weights(t5, "fp16", False) == t5[2:]
    assert choose_weights(t5, None, False) == t5[:2]


def test_single_model_repository_keeps_its_processor_and_tokenizer_files():
    clip = ["config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5", "flax_model.msgpack",
            "preprocessor_config.json", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", ".gitattributes", "README.md"]
    assert select_files(clip, None, "fp16", False) == sorted(
        ["config.json", "model.safetensors", "preprocessor_config.json", "vocab.json", "merges.txt", "tokenizer.json",
         "tokenizer_config.json", "special_tokens_map.json"])


def test_hub_token_from_environment_kaggle_secrets_or_colab(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setitem(sys.modules, "kaggle_secrets", None)
    monkeypatch.setitem(sys.modules, "google.colab", None)
    assert hub_token() is None
    secrets = types.SimpleNamespace(UserSecretsClient=lambda: types.SimpleNamespace(
        get_secret=lambda name: {"HF_TOKEN": "hf_kaggle"}[name]))
    monkeypatch.setitem(sys.modules, "kaggle_secrets", secrets)
    assert hub_token() == "hf_kaggle"
    monkeypatch.setitem(sys.modules, "kaggle_secrets", None)
    colab = types.ModuleType("google.colab")
    colab.userdata = types.SimpleNamespace(get=lambda name: {"HF_TOKEN": "hf_colab"}[name])
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    assert hub_token() == "hf_colab"
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert hub_token() == "hf_env"


def test_resolve_never_loads_anything(monkeypatch, twins):
    """Resolution only finds files: diffusers' loader must not be touched."""
    import diffusers

    monkeypatch.setattr(diffusers.DiffusionPipeline, "from_pretrained",
                        classmethod(lambda *a, **k: pytest.fail("loaded a model")))
    assert resolve("tiny:sdxl-base").path == twins["sdxl-base"]


def test_load_asks_the_hub_only_for_what_it_will_use(monkeypatch, cpu_runtime, twins):
    """The SDXL refiner joins the base with the base's text_encoder_2 and VAE: their copies in the refiner
    repository (1.6 GB in fp16) must not be downloaded; AnimateDiff built on SD1.5 skips the safety checker."""
    import genhelpers
    from genhelpers.hub import weights as w

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


def test_the_real_loading_path_does_not_depend_on_the_twins():
    """weights resolves tiny: references through what the twins registered; it imports nothing of theirs."""
    import ast

    import genhelpers.hub.weights as w

    tree = ast.parse(open(w.__file__).read())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names} | {
        n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "tiny" not in imported
    assert w.kind_of("tiny:sd15") == "tiny"  # registered by genhelpers.twins.registry when the package was imported
