"""Every published model, downloaded from a local hub that serves the published file trees
(tests/reference/hub_trees.json) to the real huggingface_hub client, for a float16 GPU run and a float32 CPU
run; then loaded from the downloaded snapshot. Nothing reaches the network."""
import fnmatch
import json
from pathlib import Path

import pytest

import genhelpers
from genhelpers.hub import catalog, weights
from genhelpers.platform.runtime import Runtime

from .local_hub import Hub, load_trees

TREES = load_trees()
_OURS = json.loads((Path(__file__).resolve().parent / "reference" / "hub_tree_additions.json").read_text())
ADDITIONS = _OURS["repos"]
# repositories the shared listing lacks, in the same form (files as {"path": …}), served beside the shared ones
NEW_REPOS = {r: {**t, "files": [{"path": f} for f in t["files"]]} for r, t in _OURS.get("new_repos", {}).items()}
SERVED = {**TREES, **NEW_REPOS}
ALIASES = {e.repo: {v: k for k, v in e.component_folders.items()} for e in catalog.ENTRIES.values()}
CPU = Runtime("local", (), "float32")


def served_files(repo: str, tree: dict) -> list[str]:
    """The shared listing's files, with our evidence-backed replacements and additions (hub_tree_additions.json)."""
    ours = ADDITIONS.get(repo, {})
    return [ours.get("replace", {}).get(f["path"], f["path"]) for f in tree["files"]] + ours.get("files", [])


@pytest.fixture(scope="module")
def hub(twins):
    repos = {r: {"files": served_files(r, t), "gated": t.get("gated") is True} for r, t in SERVED.items()}
    twin_of = {e.repo: twins[k] for k, e in catalog.ENTRIES.items() if k in twins}
    with Hub(repos, twin_of, ALIASES, tokens={"hf_granted"}) as h:
        yield h


@pytest.fixture
def online(hub, monkeypatch, tmp_path):
    """The real client, pointed at the local hub, with an empty cache and no token."""
    import sys


    hub.point_client(monkeypatch, tmp_path / "hub")
    monkeypatch.setitem(sys.modules, "kaggle_secrets", None)
    monkeypatch.setitem(sys.modules, "google.colab", None)
    hub.requests.clear()
    return hub


def fetched(hub) -> list[str]:
    return sorted({p.split("/resolve/", 1)[1].split("/", 1)[1] for m, p in hub.requests
                   if m == "GET" and "/resolve/" in p})


def weight_files(names):
    return [n for n in names if weights._weight_kind(n.rsplit("/", 1)[-1])]


@pytest.mark.parametrize("dtype", ["float16", "float32"])
@pytest.mark.parametrize("key", sorted(k for k, e in catalog.ENTRIES.items() if e.repo in SERVED))
def test_every_published_model_downloads_what_it_needs_and_loads(online, key, dtype, monkeypatch):
    entry = catalog.ENTRIES[key]
    if entry.gated:  # no token: the teaching error, before anything is written; with a granted token: loads
        with pytest.raises(weights.GatedModel, match="accept the licence"):
            genhelpers.load(entry.repo, CPU, memory=None, dtype=dtype, quiet=True)
        monkeypatch.setenv("HF_TOKEN", "hf_granted")
        online.requests.clear()
    if entry.pickle_only:  # refused with the opt-in named, before any weight is downloaded; loaded when allowed
        with pytest.raises(ValueError, match="pickle weights only.*allow_pickle=True"):
            genhelpers.load(entry.repo, CPU, memory=None, dtype=dtype, quiet=True)
        pipeline = "model_index.json" in online.repos[entry.repo]["files"]
        assert fetched(online) == (["model_index.json"] if pipeline else [])  # at most the index, to know the parts
    obj = genhelpers.load(entry.repo, CPU, memory=None, dtype=dtype, quiet=True, allow_pickle=entry.pickle_only)
    assert obj.genhelpers_info["source"] == "hf-hub"
    got = fetched(online)
    published = set(online.repos[entry.repo]["files"])
    assert set(got) <= published
    # nothing we never load: no single-file checkpoints at the top of a pipeline, no ONNX/Flax/TF, no pickle
    # beside safetensors, at most one weight set (one variant) per folder
    assert not any(n.endswith((".onnx", ".msgpack", ".h5", ".ckpt")) for n in got), got
    assert entry.pickle_only or not any(n.endswith(".bin") for n in got), got
    assert not any(n.split("/")[0] in entry.skip for n in got), got  # parts never loaded are never fetched
    folders = {}
    for n in weight_files(got):
        folder = n.rsplit("/", 1)[0] if "/" in n else ""
        folders.setdefault(folder, set()).add(weights._weight_kind(n.rsplit("/", 1)[-1]))
    assert all(len(kinds) == 1 for kinds in folders.values()), folders
    if "model_index.json" in published:
        assert "" not in folders, "a single-file checkpoint was downloaded"
        index = json.loads(Path(obj.genhelpers_info["path"], "model_index.json").read_text())
        used = {k for k, v in index.items() if isinstance(v, list) and v[0] is not None}
        assert set(folders) <= used | set(entry.component_folders.values())
    # the variant asked for when it exists: fp16 files for a float16 run where the repo has them
    if dtype == "float16" and entry.variants:
        has_fp16 = {n.rsplit("/", 1)[0] if "/" in n else "" for n in weight_files(published) if ".fp16" in n}
        assert all(v == "fp16" for f, kinds in folders.items() if f in has_fp16 for _, v in kinds), folders
        assert has_fp16 & set(folders)  # (IF's watermarker is published in float32 only: that one is kept)


def test_clip_gets_its_processor_and_tokenizer_files(online):
    genhelpers.load("openai/clip-vit-large-patch14", CPU, memory=None, quiet=True)
    got = fetched(online)
    for name in ("preprocessor_config.json", "vocab.json", "merges.txt", "tokenizer_config.json"):
        assert name in got
    path = genhelpers.locate("openai/clip-vit-large-patch14")
    from transformers import CLIPProcessor

    CLIPProcessor.from_pretrained(path)  # the processor the notebook builds loads from the same snapshot


def test_sdxl_vae_fp16_fix_takes_no_single_file_copy(online):
    genhelpers.load("madebyollin/sdxl-vae-fp16-fix", CPU, memory=None, dtype="float16", quiet=True)
    assert fetched(online) == ["config.json", "diffusion_pytorch_model.safetensors"]


def test_shap_e_float32_uses_the_fp16_safetensors_and_the_renderer_folder(online):
    """openai/shap-e on main: prior/ and text_encoder/ have safetensors only as fp16, shap_e_renderer/ only a
    pickle; renderer/ (outside model_index.json) has the renderer's fp16 safetensors. Safetensors-only loads
    the renderer from there; no pickle is downloaded."""
    pipe = genhelpers.load("openai/shap-e", CPU, memory=None, dtype="float32", quiet=True)
    got = fetched(online)
    assert "renderer/diffusion_pytorch_model.fp16.safetensors" in got
    assert "prior/diffusion_pytorch_model.fp16.safetensors" in got
    assert not any(n.endswith(".bin") for n in got)
    assert pipe.prior.dtype.__str__() == "torch.float32"  # upcast from the fp16 files


def test_a_gated_repo_says_how_to_get_access(online, monkeypatch):
    online.repos["acme/gated-model"] = {"files": ["config.json", "diffusion_pytorch_model.safetensors"],
                                        "gated": True}
    with pytest.raises(weights.GatedModel, match=r"(?s)gated model.*no token was found.*accept the licence.*"
                                                 r"secret named HF_TOKEN.*re-run"):
        genhelpers.locate("acme/gated-model")
    monkeypatch.setenv("HF_TOKEN", "hf_not_granted")
    with pytest.raises(weights.GatedModel, match="not been granted access") as e:
        genhelpers.locate("acme/gated-model")
    assert "hf_not_granted" not in str(e.value)  # the token is never printed
    monkeypatch.setenv("HF_TOKEN", "hf_granted")
    assert (genhelpers.locate("acme/gated-model") / "config.json").is_file()


def test_an_unreachable_hub_is_not_read_as_a_missing_file(online, monkeypatch):
    import huggingface_hub.constants as c
    import huggingface_hub.utils._http as http

    monkeypatch.setattr(http.time, "sleep", lambda s: None)  # the client's retries back off 1+2+4+8+8 s

    monkeypatch.setattr(c, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setattr(c, "HUGGINGFACE_CO_URL_TEMPLATE", "http://127.0.0.1:9/{repo_id}/resolve/{revision}/{filename}")
    with pytest.raises(weights.HubUnreachable, match="could not be reached.*internet on"):
        genhelpers.locate("stabilityai/stable-diffusion-xl-base-1.0")


def test_the_published_trees_are_the_reference_data():
    """The served trees are the shared reference data, as recorded (not edited to suit the code)."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "reference" / "hub_trees.json"
    if shared.is_file():
        assert json.loads(shared.read_text())["repos"] == TREES
    assert fnmatch.fnmatch("unet/diffusion_pytorch_model.fp16.safetensors", "unet/*.fp16.safetensors")
    for repo, ours in ADDITIONS.items():  # each change with its evidence (hub_trees.md, 'Our additions')
        shared = {f["path"] for f in TREES[repo]["files"]}
        assert ours["why"] and not set(ours.get("files", [])) & shared
        assert set(ours.get("replace", {})) <= shared  # a replacement names a file the shared listing has
    assert not set(NEW_REPOS) & set(TREES)  # new repositories only, never a second version of a shared one
    assert all(t["why"] for t in NEW_REPOS.values())


def test_karlo_and_its_variations_open_no_pickle(online):
    """Karlo's repository keeps every part as .bin and .safetensors: only the safetensors are fetched, with no
    opt-in. The variations repository has pickles only; the notebook hands it Karlo's parts and CLIP ViT-L/14's
    vision tower read from openai's safetensors (unclip.clip_image_encoder), so only its model index and scheduler
    configs are fetched from it, again with no opt-in."""
    from genhelpers.models import unclip

    karlo = genhelpers.load("kakaobrain/karlo-v1-alpha", CPU, memory=None, quiet=True)
    got = fetched(online)
    assert "prior/diffusion_pytorch_model.safetensors" in got and not any(n.endswith(".bin") for n in got), got
    online.requests.clear()
    encoder, processor = unclip.clip_image_encoder("openai/clip-vit-large-patch14")
    got = fetched(online)
    assert "model.safetensors" in got and not any(n.endswith(".bin") for n in got), got
    online.requests.clear()
    shared = {n: getattr(karlo, n) for n in ("decoder", "text_proj", "super_res_first", "super_res_last",
                                             "text_encoder", "tokenizer")}
    with pytest.raises(ValueError, match="image_encoder publishes pickle weights only"):  # without the CLIP tower
        genhelpers.load("kakaobrain/karlo-v1-alpha-image-variations", CPU, memory=None, quiet=True, **shared)
    var = genhelpers.load("kakaobrain/karlo-v1-alpha-image-variations", CPU, memory=None, quiet=True,
                          image_encoder=encoder, feature_extractor=processor, **shared)
    assert {f.split("/")[0] for f in fetched(online)} == {"model_index.json", "decoder_scheduler",
                                                        "super_res_scheduler"}
    assert var.decoder is karlo.decoder and var.image_encoder is encoder


# ------------------------------------------------------------------------------------ trust (issue 33)
def test_a_load_resolves_the_revision_once_and_records_its_commit(online):
    """The review's case (finding 12): main moves between the listing and the download (here: to a commit that
    adds a pickle). The load asked the hub for main once, took that commit, and fetched every file at it; the
    sidecar's model record says which commit."""
    repo = "madebyollin/sdxl-vae-fp16-fix"
    first, moved = "1" * 40, "2" * 40
    files = online.repos[repo]["files"]
    online.commits[repo] = {first: files, moved: [*files, "diffusion_pytorch_model.bin"]}
    online.heads[repo] = first
    import huggingface_hub

    real = huggingface_hub.HfApi.model_info

    def then_main_moves(self, *a, **k):
        info = real(self, *a, **k)
        online.heads[repo] = moved  # someone pushes right after our listing
        return info

    huggingface_hub.HfApi.model_info = then_main_moves
    try:
        vae = genhelpers.load(repo, CPU, memory=None, quiet=True)
    finally:
        huggingface_hub.HfApi.model_info = real
    assert vae.genhelpers_info["revision"] == first
    def revision(path):  # /<owner>/<name>/resolve/<rev>/<file> or /api/models/<owner>/<name>/revision/<rev>
        parts = path.split("/")
        return parts[parts.index("resolve" if "/resolve/" in path else "revision") + 1]

    revisions = {revision(p) for m, p in online.requests if "/resolve/" in p or "/revision/" in p}
    assert revisions == {first}, online.requests  # never 'main' again, never the moved commit
    asked = [p for m, p in online.requests if p.startswith("/api/models/")]
    assert asked[0] == f"/api/models/{repo}" and asked.count(asked[0]) == 1  # main asked once


def test_a_reference_can_pin_a_commit(online):
    """'owner/name@<commit>' (e.g. in a profile) loads that commit, whatever main says; an unknown commit is a
    teaching error, not a silent fallback."""
    repo = "madebyollin/sdxl-vae-fp16-fix"
    pinned = "3" * 40
    online.commits[repo] = {pinned: online.repos[repo]["files"]}
    vae = genhelpers.load(f"{repo}@{pinned}", CPU, memory=None, quiet=True)
    assert vae.genhelpers_info["revision"] == pinned and vae.genhelpers_info["ref"] == f"{repo}@{pinned}"
    assert all(pinned in p for m, p in online.requests if "/resolve/" in p)
    with pytest.raises(weights.WeightsNotFound, match="has no revision '4444"):
        genhelpers.load(f"{repo}@{'4' * 40}", CPU, memory=None, quiet=True)


def test_allow_pickle_keeps_safetensors_first(tmp_path, twins):
    """The review's case (finding 7): a pickle beside the safetensors of a component. Without the opt-in the
    safetensors load; with it too (before the fix, allow_pickle=True read the .bin instead, and a
    safetensors-only twin failed to load at all)."""
    import shutil

    import torch

    folder = tmp_path / "both"
    shutil.copytree(twins["modelscope-t2v"], folder)
    torch.save({"not": torch.zeros(1)}, folder / "vae" / "diffusion_pytorch_model.bin")  # would fail to load
    for allow in (False, True):
        pipe = genhelpers.load(str(folder), CPU, memory=None, quiet=True, allow_pickle=allow)
        assert pipe.vae is not None
    pipe = genhelpers.load("tiny:modelscope-t2v", CPU, memory=None, quiet=True, allow_pickle=True)
    assert pipe.vae is not None


# ---- stylecrafter: h94/IP-Adapter is a shelf of adapters, not a diffusers folder: each catalog entry lists the files
def test_the_ip_adapter_fetches_its_files_only_and_loads_into_animatediff(online, cpu_runtime):
    """The SD 1.5 adapter and the encoder beside it, by their published paths; none of the other adapters, no
    pickle. diffusers' load_ip_adapter then reads them from the snapshot as from the hub."""
    from genhelpers.models import ipadapter

    folder = genhelpers.locate("h94/IP-Adapter")
    assert fetched(online) == sorted(catalog.ENTRIES["ip-adapter-sd15"].files)
    pipe = genhelpers.load("tiny:sd15", cpu_runtime, memory=None, quiet=True, pipeline="AnimateDiffPipeline",
                           motion_adapter="tiny:animatediff-motion-adapter-v1-5-2")
    pipe.load_ip_adapter(folder, subfolder="models", weight_name=ipadapter.WEIGHT_NAME)
    assert len(ipadapter.processor_scales(pipe.unet)) == 16 and pipe.image_encoder is not None
    online.requests.clear()
    encoder = genhelpers.load("ip-adapter-image-encoder", CPU, memory=None, quiet=True)
    assert type(encoder).__name__ == "CLIPVisionModelWithProjection"
    assert encoder.genhelpers_info["path"].endswith("models/image_encoder")
    assert not any(n.endswith(".bin") for n in fetched(online))  # from the cache: nothing new, never a pickle


def test_listed_files_are_checked_before_any_download(online):
    """stylecrafter: an entry's exact files must be in the listing, and a pickle among them needs the opt-in."""
    with pytest.raises(ValueError, match="pickle weights only.*allow_pickle=True"):
        weights.from_hub("h94/IP-Adapter", None, False, exact=("models/ip-adapter_sd15.bin",))
    with pytest.raises(ValueError, match="does not list models/ip-adapter_sd99.safetensors"):
        weights.from_hub("h94/IP-Adapter", None, False, exact=("models/ip-adapter_sd99.safetensors",))
    assert fetched(online) == []
