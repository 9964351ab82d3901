"""The shared planner (genhelpers.models.planner) and its tiny twin LLM: the twin has the published layout and
tokenizer behaviour, a twin always yields a valid, deterministic plan whose report agrees with it, the cached and
batched option scores equal plain full forward passes, and hand-edited plans are refused with a teaching error."""
import json
import math
from pathlib import Path

import pytest

from genhelpers.errors import ParameterError
from genhelpers.models import planner as P

FACTS = json.loads((Path(__file__).parent / "reference" / "planner" / "facts.json").read_text())
KEY = "qwen2.5-1.5b-instruct"

SCHEMA = (
    P.ListField("objects", (
        P.Field("shape", "choice", "ball", choices=("ball", "box")),
        P.Field("size", "float", 0.12, lo=0.05, hi=1.0, step=0.01, unit="m"),
        P.Field("aspect", "choice", "cube", choices=("cube", "flat", "tall"), when=("shape", "box")),
        P.Field("mass", "float", 0.6, lo=0.05, hi=20, step=0.05, mode="grid"),
        P.Field("bouncy", "bool", True),
    ), 1, 6, doc="a scene needs an object"),
    P.Group("view", (P.Field("camera", "choice", "front", choices=("front", "side", "top")),
                     P.Field("note", "text", "", max_new_tokens=12))),
    P.Field("count", "int", 3, lo=0, hi=40),
)


@pytest.fixture(scope="module")
def twin():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from genhelpers.twins import registry

    folder = registry.build(KEY)
    return folder, AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.float32).eval()


# ----------------------------------------------------------------------------------------------- the twin
def test_twin_has_the_published_file_names_and_classes(twin):
    folder, tok, model = twin
    published = set(FACTS["qwen2_5_1_5b_instruct"]["files"]) - {"LICENSE", "README.md", ".gitattributes"}
    assert {p.name for p in folder.iterdir()} == published
    assert type(tok).__name__ == "Qwen2Tokenizer" and type(model).__name__ == "Qwen2ForCausalLM"
    cfg = model.config
    assert (cfg.num_key_value_heads < cfg.num_attention_heads and cfg.tie_word_embeddings
            and not cfg.use_sliding_window)
    assert model.model.layers[0].self_attn.q_proj.bias is not None  # q/k/v biases, as published
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>" and tok.bos_token is None
    gen = json.loads((folder / "generation_config.json").read_text())
    published_gen = FACTS["qwen2_5_1_5b_instruct"]["generation_config"]
    for k in ("do_sample", "temperature", "top_p", "top_k", "repetition_penalty"):  # samples, as published
        assert gen[k] == published_gen[k]


def test_twin_tokenizer_is_trained_with_the_pre_tokenizer_qwen2tokenizer_rebuilds(twin):
    from tokenizers import Tokenizer

    from genhelpers.twins.llm import QWEN_REGEX

    folder, tok, _ = twin
    assert QWEN_REGEX == FACTS["tokenizer_transformers_5_24"]["pretokenize_regex"]
    raw = Tokenizer.from_file(str(folder / "tokenizer.json"))
    for text in ['{"size":0.125,"shape":"ball"}', "a pine forest on a hill at dusk, ünïcode 12345",
                 "<|im_start|>user\nhi<|im_end|>\n"]:
        assert tok(text)["input_ids"] == raw.encode(text).ids
        assert tok.decode(tok(text)["input_ids"]) == text
    assert [tok.decode([i]) for i in tok("2025")["input_ids"]] == list("2025")  # digits one by one, as Qwen's


def test_prompt_and_json_tokenise_independently(twin):
    """The planner encodes the chat prompt once and appends the JSON's ids: the boundary never merges."""
    _, tok, _ = twin
    prompt = tok.apply_chat_template(P.messages("a test", "two balls", SCHEMA), tokenize=False,
                                     add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n") and "<|im_start|>system\n" in prompt
    for json_text in ['{"n_objects":', '{"objects":[{"shape":"', '{"view":{"note":" a b']:
        assert tok(prompt + json_text)["input_ids"] == tok(prompt)["input_ids"] + tok(json_text)["input_ids"]


def test_full_size_config_counts_on_the_meta_device():
    from genhelpers.hub import catalog, published

    counted = FACTS["full_size_meta_count"]
    model = published.meta_model(KEY, "model")
    state = model.state_dict()
    assert published.count(KEY, "model") == counted["parameters_unique"] == catalog.ENTRIES[KEY].params["model"]
    assert len(state) == counted["state_dict_entries"]
    layer0 = sorted(k.removeprefix("model.layers.0.") for k in state if k.startswith("model.layers.0."))
    assert layer0 == counted["per_layer_keys"]
    assert 2 * counted["parameters_unique"] == counted["bytes_bf16"]
    entry = catalog.ENTRIES[KEY]
    assert entry.repo == "Qwen/Qwen2.5-1.5B-Instruct" and entry.licence == "Apache-2.0"


# ----------------------------------------------------------------------------------------------- filling
@pytest.fixture(scope="module")
def filled(twin):
    _, tok, model = twin
    return P.fill(model, tok, SCHEMA, "two red balls bouncing on a court", "a physics scene")


def _at(plan, path):
    node = plan
    for part in path.replace("[", ".").replace("]", "").split("."):
        node = node[int(part)] if part.isdigit() else node[part]
    return node


def test_a_random_twin_yields_a_valid_plan_with_an_honest_report(filled):
    assert P.validate(filled.plan, SCHEMA) == filled.plan
    rows = {r["path"]: r for r in filled.report}
    assert set(P.counts(filled.report)) <= set(P.SOURCES)
    for path, r in rows.items():
        if r["source"] == "not applicable":
            continue
        value = len(_at(filled.plan, path[:-2])) if path.endswith("[]") else _at(filled.plan, path)
        assert r["value"] == value, path
        if r["source"] == "fallback":
            assert r["raw"], path  # what the model wrote, or the tie, is kept
    for i, obj in enumerate(filled.plan["objects"]):
        assert rows[f"objects[{i}].aspect"]["source"] == ("model" if obj["shape"] == "box" else "not applicable")
        assert 0 < rows[f"objects[{i}].shape"]["confidence"] <= 1
        assert len(rows[f"objects[{i}].shape"]["alternatives"]) == 2
    # the random twin writes long runs of digits: numbers out of range fall back to the default, reported
    assert "fallback" in P.counts(filled.report)
    assert "fallback" in P.report_table(filled.report) and "model wrote" in P.report_table(filled.report)


def test_plans_are_deterministic_although_the_published_config_samples(twin, filled):
    _, tok, model = twin
    assert model.generation_config.do_sample  # the planner passes do_sample=False itself
    again = P.fill(model, tok, SCHEMA, "two red balls bouncing on a court", "a physics scene")
    assert again.plan == filled.plan and again.report == filled.report


def test_cached_batched_scores_equal_full_forward_passes(twin):
    """Reference: each option's summed log-probability from one plain forward pass over the whole sequence,
    counted from the first token where prefix + option tokenises differently from the prefix."""
    import torch

    _, tok, model = twin
    prompt = tok.apply_chat_template(P.messages("a test", "a tall box", SCHEMA), tokenize=False,
                                     add_generation_prompt=True)
    sess = P._Session(model, tok, prompt)
    prefix = '{"n_objects":1,"objects":[{"shape":"'
    options = ['ball"', 'box"', 'banana split"']
    got = sess.score(prefix, options)
    base, p = tok(prompt)["input_ids"], tok(prefix)["input_ids"]
    for option, score in zip(options, got, strict=True):
        full = tok(prefix + option)["input_ids"]
        k = next((i for i, (a, b) in enumerate(zip(full, p, strict=False)) if a != b), len(p))
        ids = torch.tensor([base + full])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0], -1)
        ref = sum(float(logp[len(base) + t - 1, full[t]]) for t in range(k, len(full)))
        assert math.isclose(score, ref, abs_tol=1e-4), (option, score, ref)


def test_a_number_the_model_writes_in_range_is_read_and_snapped(twin, monkeypatch):
    _, tok, model = twin
    sess = P._Session(model, tok, "a plan, please")
    size = SCHEMA[0].fields[1]
    monkeypatch.setattr(P._Session, "generate", lambda self, *a, **k: "0.337,")
    row = P._ask(sess, size, '{"size":', "size", False)
    assert (row["value"], row["source"], row["raw"]) == (0.34, "model", "0.337,")
    monkeypatch.setattr(P._Session, "generate", lambda self, *a, **k: "7,")
    row = P._ask(sess, size, '{"size":', "size", False)
    assert (row["value"], row["source"]) == (0.12, "fallback") and "outside [0.05, 1] m" in row["raw"]


def test_number_generation_is_limited_to_number_pieces(twin):
    _, tok, model = twin
    sess = P._Session(model, tok, "a plan, please")
    text = sess.generate('{"count":', sess.digits, sess.ends, 6)
    body = text.rstrip(",}]\n ")
    assert body and set(body) <= set("0123456789.-"), text


def test_the_grid_and_snapping():
    mass = SCHEMA[0].fields[3]
    grid = P._grid(mass)
    assert len(grid) <= 64 and grid[0] == 0.05 and grid[-1] == 20
    count = P.Field("petals", "int", 5, lo=3, hi=40, mode="grid")
    assert P._grid(count) == list(range(3, 41))
    assert P._snap(SCHEMA[0].fields[1], 0.333) == 0.33


# ----------------------------------------------------------------------------------------------- hand-edited plans
def test_defaults_are_valid_and_listing_names_every_field():
    plan = P.defaults(SCHEMA)
    assert P.validate(plan, SCHEMA) == plan
    text = P.listing(SCHEMA)
    for name in ("n_objects", "shape", "aspect", "(only when shape is \"box\")", "[0.05, 1] m", "camera"):
        assert name in text


def test_non_applicable_fields_are_dropped_and_applicable_ones_required():
    plan = P.defaults(SCHEMA)
    plan["objects"][0]["aspect"] = "tall"  # a ball has no aspect: dropped
    assert "aspect" not in P.validate(plan, SCHEMA)["objects"][0]
    plan["objects"][0]["shape"] = "box"
    assert P.validate(plan, SCHEMA)["objects"][0]["aspect"] == "tall"
    del plan["objects"][0]["aspect"]
    with pytest.raises(ParameterError, match=r"objects\[0\]\.aspect is missing \(only when shape is \"box\"\)"):
        P.validate(plan, SCHEMA)


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["objects"][0].update(colour="red"), r"objects\[0\] has an unknown field 'colour'"),
    (lambda p: p["objects"][0].update(size=1.5),
     r"objects\[0\]\.size=1\.5 is outside \[0\.05, 1\] m: the nearest valid value is 1"),
    (lambda p: p["objects"][0].update(shape="cone"), r"objects\[0\]\.shape='cone' is not an option"),
    (lambda p: p["objects"][0].update(shape="bal"), r"did you mean 'ball'"),
    (lambda p: p.update(objects=[]), r"objects has 0 item\(s\): it needs at least 1 \(a scene needs an object\)"),
    (lambda p: p.update(count=2.5), r"count=2\.5 must be a whole number in \[0, 40\]"),
    (lambda p: p["objects"][0].update(bouncy="yes"), r"objects\[0\]\.bouncy='yes' must be true or false"),
    (lambda p: p.update(camera="top"), r"the plan has an unknown field 'camera'"),
    (lambda p: p.pop("view"), r"view is missing"),
])
def test_hand_edited_plans_are_refused_naming_the_field(edit, message):
    plan = P.defaults(SCHEMA)
    edit(plan)
    with pytest.raises(ParameterError, match=message) as e:
        P.parse(json.dumps(plan), SCHEMA)
    assert e.value.parameter == "plan_json" and str(e.value).startswith("plan_json: ")


def test_json_syntax_errors_say_where():
    with pytest.raises(ParameterError, match=r"plan_json is not valid JSON \(line 1, column 2"):
        P.parse("{objects: []}", SCHEMA)


def test_user_report_and_table():
    plan = P.defaults(SCHEMA)
    rows = P.user_report(plan, SCHEMA)
    assert P.counts(rows) == {"user": len(rows)} and rows[0]["path"] == "objects[]"
    assert "objects[0].shape" in P.report_table(rows)


def test_empty_description_is_refused_before_the_model_runs():
    with pytest.raises(ParameterError, match="the description is empty"):
        P.fill(None, None, SCHEMA, "  ", "a test")


def test_the_public_api_is_stable():
    for name in ("Field", "ListField", "Group", "defaults", "validate", "parse", "to_json", "listing", "messages",
                 "check_json_text", "fill", "Filled", "user_report", "report_table", "counts", "SOURCES"):
        assert hasattr(P, name) and name in P.__doc__


def test_the_description_reaches_the_scores(twin):
    """No dead path: the description changes the option scores (a random twin barely reads it, so plans may not
    change; executors are tested with hand-written plans)."""
    _, tok, model = twin
    scores = []
    for description in ("a tall box", "two red balls bouncing on a court"):
        prompt = tok.apply_chat_template(P.messages("a test", description, SCHEMA), tokenize=False,
                                         add_generation_prompt=True)
        scores.append(P._Session(model, tok, prompt).score('{"n_objects":1,"objects":[{"shape":"', ['ball"', 'box"']))
    assert max(abs(a - b) for a, b in zip(*scores, strict=True)) > 1e-4
