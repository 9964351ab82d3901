"""DALL·E's dVAE: published sizes, the pickle opt-in and its one-time conversion (also through a served CDN),
the twin's live paths, and the codebook measures against hand-computed values."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from genhelpers.models import dvae
from genhelpers.outputs.images import demo_image, shapes
from genhelpers.params import ParameterError

from .https_stand_in import CDN

# published: the DALL-E package's encoder.pkl / decoder.pkl (issue 17; the repository's README)
PUBLISHED = {"encoder": 53_786_240, "decoder": 43_829_766}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENHELPERS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_published_sizes_from_the_package_classes_on_the_meta_device():
    assert {p: dvae.meta_count(p) for p in dvae.PARTS} == PUBLISHED


def test_pickles_are_refused_without_the_opt_in_and_nothing_is_written(cache):
    with pytest.raises(ParameterError, match="allow_pickle=True") as e:
        dvae.load(dvae.TWIN)
    assert e.value.parameter == "allow_pickle"
    assert not list(cache.rglob("*.safetensors"))


def test_converted_once_then_read_without_pickles(cache, monkeypatch):
    enc, dec = dvae.load(dvae.TWIN, allow_pickle=True)
    # the reference: the published pickle read directly (weights_only=False on purpose, here in the test)
    ref = torch.load(dvae._twin_folder() / "encoder.pkl", weights_only=False)
    x = dvae.to_input([demo_image(64)], 64)
    with torch.no_grad():
        assert torch.equal(enc(x), ref(x))
    real_load = torch.load

    def no_pickles(*args, **kwargs):
        raise AssertionError("a pickle was read after conversion")

    monkeypatch.setattr(torch, "load", no_pickles)
    enc2, _ = dvae.load(dvae.TWIN)  # no opt-in needed: only the converted .safetensors are read
    with torch.no_grad():
        assert torch.equal(enc2(x), ref(x))
    monkeypatch.setattr(torch, "load", real_load)
    assert enc2.vocab_size == 512 and enc2.n_hid == 64  # its settings travel in the file's metadata


def test_no_pickle_is_read_with_weights_only_false_anywhere():
    """The dVAE's pickles are read with weights_only=True and only OpenAI's classes allowed (issue 33): nothing in
    genhelpers reads a pickle the unsafe way any more."""
    root = Path(dvae.__file__).parents[1]
    assert [p for p in root.rglob("*.py") if "weights_only=False" in p.read_text()] == []


@pytest.fixture
def cdn(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    for p in dvae.PARTS:
        (served / f"{p}.pkl").write_bytes((dvae._twin_folder() / f"{p}.pkl").read_bytes())
    server = CDN(served, tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
    monkeypatch.setattr(dvae, "CDN", server.url)
    yield server, served
    server.server.shutdown()


def test_the_cdn_route_downloads_converts_and_removes_the_pickles(cache, cdn):
    """The published route rehearsed over https: refused before any download without the opt-in; with it, the
    pickles are downloaded, converted once (their SHA-256 kept in the converted files), and removed."""
    from genhelpers.platform.folders import sha256

    server, served = cdn
    with pytest.raises(ParameterError, match="allow_pickle"):
        dvae.load("openai")
    assert server.requests == []  # refused before any download
    enc, _ = dvae.load("openai", allow_pickle=True)
    assert len(server.requests) == 2
    converted = cache / "dvae" / "converted" / "openai"
    assert not list(converted.rglob("*.pkl"))  # downloads removed
    assert dvae.provenance(converted) == {p: {"source": server.url + f"{p}.pkl",
                                              "source_sha256": sha256(served / f"{p}.pkl")} for p in dvae.PARTS}
    dvae.load("openai")
    assert len(server.requests) == 2  # the second time: the converted files, no network
    assert enc.vocab_size == 512


def test_a_swapped_pickle_runs_no_code_even_with_the_opt_in(cache, cdn, tmp_path):
    """The review's case (issue 33, finding 3): a pickle whose __reduce__ runs a command, served in place of
    encoder.pkl. Before the fix it ran as soon as it was unpickled; now the read stops at the first global that is
    not one of OpenAI's classes, and nothing ran."""
    import pickle

    _, served = cdn
    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            import os

            return os.system, (f"touch {marker}",)

    torch.save({"state": Payload()}, served / "encoder.pkl", _use_new_zipfile_serialization=True,
               pickle_module=pickle)
    with pytest.raises(ValueError, match="not a dVAE pickle genhelpers can read safely"):
        dvae.load("openai", allow_pickle=True)
    assert not marker.exists()
    assert not list((cache / "dvae" / "converted" / "openai").rglob("*.safetensors"))


def test_a_pinned_hash_is_checked_before_the_file_is_opened(cache, cdn, monkeypatch):
    monkeypatch.setitem(dvae.PINNED_SHA256, "encoder", "0" * 64)
    opened = []
    monkeypatch.setattr(dvae, "_unpickle", lambda *a: opened.append(a))
    with pytest.raises(ValueError, match="is not the pinned 0000"):
        dvae.load("openai", allow_pickle=True)
    assert opened == []


def test_a_redirect_to_plain_http_is_refused(cache, tmp_path, monkeypatch):
    server = CDN(tmp_path, tmp_path, redirect="http://127.0.0.1:9/")
    monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
    monkeypatch.setattr(dvae, "CDN", server.url)
    try:
        with pytest.raises(ValueError, match="which is not https: refusing to download"):
            dvae.load("openai", allow_pickle=True)
    finally:
        server.server.shutdown()
    assert server.requests == ["/encoder.pkl"]


def test_a_folder_without_the_pickles_is_named_with_the_fix(tmp_path):
    with pytest.raises(ParameterError, match="encoder.pkl, decoder.pkl not found") as e:
        dvae.check_source(str(tmp_path))
    assert e.value.parameter == "dvae_weights"


def test_the_twin_sees_the_picture_and_the_decoder_sees_the_tokens(cache):
    enc, dec = dvae.load(dvae.TWIN, allow_pickle=True)
    pictures = [demo_image(64), *shapes(64).values()]
    tokens = dvae.encode(enc, dvae.to_input(pictures, 64))
    assert tokens.shape == (4, 8, 8) and tokens.dtype == torch.long  # one token per 8×8 patch
    assert all(not torch.equal(tokens[0], tokens[i]) for i in range(1, 4))
    assert all(len(t.unique()) > 4 for t in tokens)  # not one token for every patch
    out = dvae.decode(dec, tokens)
    assert out.shape == (4, 3, 64, 64) and 0 <= out.min() and out.max() <= 1
    assert (out[0] - out[1]).abs().mean() > 0.02
    one = tokens[:1].clone()
    one[0, 0, 0] = (one[0, 0, 0] + 1) % 512
    local = (dvae.decode(dec, one)[0] - out[0]).abs().sum(0)
    assert local[:16, :16].sum() > 1 and local[40:, 40:].sum() < 1e-3  # a token paints its own neighbourhood only


def test_codebook_usage_against_hand_computed_values():
    two = dvae.codebook_usage(torch.tensor([[0, 0], [1, 1]]), 8)
    assert two == {"tokens": 4, "distinct": 2, "share_of_vocabulary": 0.25, "perplexity": 2.0}
    skew = dvae.codebook_usage(np.array([0, 0, 0, 1]), 4)
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert skew["perplexity"] == round(math.exp(entropy), 1) == 1.8


def test_map_pixels_squeeze_is_the_published_one():
    """DALL·E's logit-Laplace range: pixels live in [0.1, 0.9] when encoded (the package's map_pixels)."""
    x = dvae.to_input([demo_image(64)], 64)
    assert x.min() >= 0.1 - 1e-6 and x.max() <= 0.9 + 1e-6


def test_the_packages_own_loader_is_refused_by_todays_torch(cache):
    """A canary for the fact this module exists for: DALL-E 0.1's ``load_model`` calls ``torch.load`` with the
    default ``weights_only=True`` (torch ≥ 2.6), which cannot rebuild a pickled module. When it starts to work, the
    package was fixed (or torch changed) and the opt-in path can be revisited."""
    import pickle

    from dall_e import load_model

    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_model(str(dvae._twin_folder() / "encoder.pkl"))
