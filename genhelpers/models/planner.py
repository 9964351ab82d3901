"""A plan from an open instruct LLM, always valid: the language model fills a fixed schema, ordinary code executes it.

GPT4Motion, 3D-GPT and Iterative Motion Editing asked GPT-4 through an API for a program (a Blender script,
procedural-generator calls, motion-editing operators), parsed it, and asked again when the parse failed (3D-GPT up
to 15 times, motion editing 3). Here the model never writes free-form code: it fills a schema field by field, and
every answer is valid by construction.

* **Choices and booleans**: every allowed option is scored by the summed log-probability of its tokens (plus the
  closing delimiter) after the JSON written so far, in one batched forward pass; the best one is taken. Scores
  start at the first token where ``prefix + option`` tokenises differently from the prefix (byte-level BPE merges
  across the boundary). Ties go to the default, reported.
* **Numbers**: greedy generation limited to digit/point/minus tokens, then a terminator; the first number in the
  text is read, snapped to the field's step if it lies in the range; otherwise the field's default is used and
  the report says what the model wrote (``mode="grid"``: a short grid of values ranked like a choice instead).
* **Lists**: the item count is read first (a number in range), then each item's fields. **Conditional fields**
  (``when``) are asked only where they apply. **Text** fields (3D-GPT's conceptualisation) are generated greedily
  and become context for the later fields; executors never read them.
* Decoding is deterministic: ``do_sample=False`` and no repetition penalty are passed explicitly, because the
  published ``generation_config.json`` samples. No remote code: transformers' own ``forward`` and ``generate``.
  The long chat prompt is encoded once per plan and its key/value cache reused for every field.

The same ``validate`` checks the model's plan (it always passes) and a plan edited by hand (``parse``), naming the
field: ``objects[1].restitution=1.5 is outside [0, 0.95] …``. Non-applicable fields (``when`` false) are dropped.
That half (schema, validation, report) is ``plan_schema``: no model, no torch; everything is re-exported here.

**Public API, stable** (the gpt4motion, procedural_3d and motion_editing notebooks build on it; extend, don't
change): ``Field``, ``ListField``, ``Group``, ``defaults``, ``validate``, ``parse``, ``check_json_text``,
``to_json``, ``listing``, ``messages``, ``fill`` → ``Filled(plan, report, seconds, prompt_tokens)``,
``user_report``, ``report_table``, ``counts``, ``SOURCES``; ``free_plan`` (the authors' free-form way, for
comparison).
"""
import json
import math
import re
import time
from dataclasses import dataclass, field

from ..errors import ParameterError
from .plan_schema import (  # noqa: F401  (the public API lives here too)
    KINDS,
    SOURCES,
    Field,
    Group,
    ListField,
    _fmt,
    _range_text,
    _row,
    applies,
    check_json_text,
    counts,
    defaults,
    listing,
    parse,
    report_table,
    to_json,
    user_report,
    validate,
)

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


# ----------------------------------------------------------------------------------------------- the model
def messages(task: str, description: str, schema, context: str = "") -> list[dict]:
    """The chat the model reads: our system line, then the description, any context and the schema."""
    system = (f"You fill a JSON plan for {task}. Use only the listed options and ranges; "
              f"answer with compact JSON in the order of the fields.")
    user = f"Description: {description.strip()}\n" + (f"{context.strip()}\n" if context.strip() else "")
    return [{"role": "system", "content": system},
            {"role": "user", "content": user + "Fields:\n" + listing(schema)}]


@dataclass
class Filled:
    plan: dict
    report: list = field(default_factory=list)  # one row per field: path, value, source, confidence, alternatives, raw
    seconds: float = 0.0
    prompt_tokens: int = 0


class _Session:
    """The prompt encoded once (its key/value cache kept) and the tokenizer's digit/terminator ids."""

    def __init__(self, model, tokenizer, prompt: str):
        import torch

        self.model, self.tok, self.torch = model, tokenizer, torch
        self.device = next(model.parameters()).device
        self.base = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        with torch.no_grad():
            self.cache = model(self._t([self.base[:-1]]), use_cache=True).cache
        self.digits, self.ends, self.quotes = _token_classes(tokenizer)

    def _t(self, rows):
        return self.torch.tensor(rows, dtype=self.torch.long, device=self.device)

    def ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def score(self, prefix: str, options: list[str]) -> list[float]:
        """Summed log-probabilities of each option after base prompt + ``prefix`` (one batched forward)."""
        import copy

        torch = self.torch
        p = self.ids(prefix)
        fulls = [self.ids(prefix + o) for o in options]
        firsts = [min(_first_difference(f, p), len(f) - 1) for f in fulls]  # at least one token scored
        common = min(firsts)
        seqs = [self.base + f for f in fulls]
        s = len(self.base) + common - 1  # the cache will cover seq[:s]; every tail starts at s
        cache = copy.deepcopy(self.cache)
        with torch.no_grad():
            if s > len(self.base) - 1:
                cache = self.model(self._t([seqs[0][len(self.base) - 1:s]]), cache=cache, use_cache=True).cache
            tails = [q[s:] for q in seqs]
            width = max(map(len, tails))
            ids = self._t([t + [self.pad] * (width - len(t)) for t in tails])
            mask = self._t([[1] * (s + len(t)) + [0] * (width - len(t)) for t in tails])
            cache.batch_repeat_interleave(len(options))
            logp = torch.log_softmax(self.model(ids, attention_mask=mask, cache=cache).logits.float(), -1)
        out = []
        for i, (q, k) in enumerate(zip(seqs, firsts, strict=True)):
            positions = range(len(self.base) + k, len(q))
            out.append(float(sum(logp[i, t - s - 1, q[t]] for t in positions)))
        return out

    def generate(self, prefix: str, allowed: list[int] | None, stops: list[int], max_new_tokens: int) -> str:
        """Greedy continuation of base prompt + ``prefix``: only ``allowed`` tokens (None: any), until a stop."""
        import copy

        from transformers import LogitsProcessor, LogitsProcessorList

        torch = self.torch

        class OnlyThese(LogitsProcessor):
            def __call__(self, input_ids, scores):
                keep = torch.full_like(scores, -math.inf)
                keep[:, allowed if input_ids.shape[1] == start else allowed + stops] = 0
                return scores + keep

        seq = self.base + self.ids(prefix)
        start = len(seq)
        procs = LogitsProcessorList([OnlyThese()] if allowed is not None else [])
        with torch.no_grad():
            out = self.model.generate(self._t([seq]), attention_mask=self._t([[1] * len(seq)]),
                                      cache=copy.deepcopy(self.cache), do_sample=False, repetition_penalty=1.0,
                                      max_new_tokens=max_new_tokens, logits_processor=procs,
                                      eos_token_id=stops, pad_token_id=self.pad, temperature=None, top_p=None,
                                      top_k=None)
        return self.tok.decode(out[0, start:].tolist(), skip_special_tokens=True)


def _first_difference(a: list, b: list) -> int:
    """The first index where two id lists differ (BPE may merge a prefix's last token with what follows)."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


_TOKEN_CLASSES: dict = {}


def _token_classes(tok):
    """(number-piece ids, terminator ids, ids holding a double quote) of a tokenizer's vocabulary, built once."""
    key = (tok.name_or_path, len(tok))
    if key not in _TOKEN_CLASSES:
        texts = tok.batch_decode([[i] for i in range(len(tok))])
        specials = set(tok.all_special_ids)
        digits = [i for i, t in enumerate(texts) if i not in specials and re.fullmatch(r"[0-9.\-]+", t)]
        ends = [i for i, t in enumerate(texts) if i not in specials and t and t.strip() and t.strip()[0] in ",}]"
                or t in ("\n", "\n\n")]
        eos = tok.eos_token_id
        quotes = [i for i, t in enumerate(texts) if '"' in t] + ([eos] if eos is not None else [])
        _TOKEN_CLASSES[key] = (digits, ends + ([eos] if eos is not None else []), quotes)
    return _TOKEN_CLASSES[key]


def _snap(f: Field, v: float):
    if f.step:
        v = f.lo + round((v - f.lo) / f.step) * f.step
        v = round(v, 6)
    v = min(max(v, f.lo), f.hi)
    return int(round(v)) if f.kind == "int" else float(v)


def _grid(f: Field) -> list:
    step = f.step or (1 if f.kind == "int" else (f.hi - f.lo) / 20)
    n = int(round((f.hi - f.lo) / step)) + 1
    if n > 64:
        step, n = (f.hi - f.lo) / 63, 64
    return sorted({_snap(f, f.lo + i * step) for i in range(n)})


def _ask(sess: _Session, f: Field, prefix: str, path: str, last: bool) -> dict:
    """One field: the value and its report row."""
    row = _row(path)
    end = "}" if last else ","
    if f.kind == "text":
        raw = sess.generate(prefix + '"', None, sess.quotes, f.max_new_tokens)
        text = raw.split('"')[0].strip()
        return {**row, "value": text, "raw": raw[:200]}
    if f.kind in ("int", "float") and f.mode == "read":
        width = len(_fmt(f.hi)) + 2 + (2 if f.kind == "float" else 0)
        allowed = [i for i in sess.digits if f.lo < 0 or "-" not in sess.tok.decode([i])]
        raw = sess.generate(prefix, allowed, sess.ends, width)
        m = NUMBER.search(raw)
        if m and f.lo <= float(m.group()) <= f.hi:
            return {**row, "value": _snap(f, float(m.group())), "raw": raw}
        why = f"model wrote {raw!r}, " + (f"outside {_range_text(f)}" if m else "not a number")
        return {**row, "value": f.default, "source": "fallback", "raw": why}
    if f.kind == "choice":
        values = list(f.choices)
        options = [json.dumps(c) if not isinstance(c, str) else c + '"' for c in values]
        opener = '"' if all(isinstance(c, str) for c in values) else ""
        options = [o if opener else o + end for o in options]
    elif f.kind == "bool":
        values, opener = [True, False], ""
        options = ["true" + end, "false" + end]
    else:  # a number ranked on its grid
        values, opener = _grid(f), ""
        options = [_fmt(v) + end for v in values]
    scores = sess.score(prefix + opener, options)
    top = max(scores)
    probs = [math.exp(s - top) for s in scores]
    total = sum(probs)
    order = sorted(range(len(values)), key=lambda i: -scores[i])
    pick = order[0]
    tied = [values[i] for i in order if scores[i] >= top - 1e-6]
    row.update(confidence=round(probs[pick] / total, 4),
               alternatives=[[values[i], round(probs[i] / total, 4)] for i in order[:3]])
    if len(tied) > 1:
        value = f.default if f.default in tied else tied[0]
        return {**row, "value": value, "source": "fallback", "raw": f"tie between {tied}: the default"}
    return {**row, "value": values[pick]}


def _fill(sess, nodes, obj: dict, root: dict, path: str, text: list, report: list):
    """Fill ``obj`` with ``nodes``, extending ``text`` (the JSON written so far, a one-element list)."""
    asked = list(nodes)
    for j, node in enumerate(asked):
        sub = f"{path}.{node.name}" if path else node.name
        if node.name in obj:  # a second definition of a name already filled
            continue
        if not applies(node, obj, root):
            twins = [n for n in asked if n.name == node.name]
            if node is twins[-1] and not any(applies(n, obj, root) for n in twins):
                report.append(_row(sub, source="not applicable"))
            continue
        sep = "" if text[0].endswith(("{", "[")) else ","
        last = all(not applies(n, obj, root) for n in asked[j + 1:] if n.name != node.name)
        if isinstance(node, Field):
            row = _ask(sess, node, text[0] + sep + f'"{node.name}":', sub, last)
            obj[node.name] = row["value"]
            report.append(row)
            text[0] += sep + f'"{node.name}":' + json.dumps(row["value"], ensure_ascii=False)
        elif isinstance(node, Group):
            obj[node.name] = {}
            text[0] += sep + f'"{node.name}":{{'
            _fill(sess, node.fields, obj[node.name], root, sub, text, report)
            text[0] += "}"
        else:
            count = Field(f"n_{node.name}", "int", len(node.default), lo=node.min_items, hi=node.max_items)
            row = _ask(sess, count, text[0] + sep + f'"n_{node.name}":', f"{sub}[]", False)
            report.append(row)
            text[0] += sep + f'"n_{node.name}":{row["value"]},"{node.name}":['
            obj[node.name] = []
            for i in range(row["value"]):
                item: dict = {}
                obj[node.name].append(item)
                text[0] += ("," if i else "") + "{"
                _fill(sess, node.fields, item, root, f"{sub}[{i}]", text, report)
                text[0] += "}"
            text[0] += "]"


def fill(model, tokenizer, schema, description: str, task: str, context: str = "") -> Filled:
    """Ask ``model`` to fill ``schema`` for ``description``: a valid plan (``validate`` passes) and its report."""
    if not isinstance(description, str) or not description.strip():
        raise ParameterError("description", "the description is empty: say what the plan is for, e.g. "
                                            "'a pine forest on a hill at dusk'")
    t0 = time.perf_counter()
    prompt = tokenizer.apply_chat_template(messages(task, description, schema, context), tokenize=False,
                                           add_generation_prompt=True)
    sess = _Session(model, tokenizer, prompt)
    root: dict = {}
    report: list = []
    _fill(sess, schema, root, root, "", ["{"], report)
    plan = validate(root, schema, name="the model's plan")  # by construction; a failure here is a bug of ours
    return Filled(plan, report, round(time.perf_counter() - t0, 3), len(sess.base))




def free_plan(model, tokenizer, schema, description: str, task: str, tries: int = 3, max_new_tokens: int = 400,
              temperature: float = 0.3, seed: int = 0, context: str = "") -> list[dict]:
    """The authors' way, for comparison: the model writes the whole plan as free text, which is parsed and checked,
    and asked again when it fails (3D-GPT: up to 15 tries at temperature 0.3; motion editing: 3 at 0). One row per
    try: ``{"try", "valid", "error", "text", "seconds"}``; stops at the first valid plan."""
    import torch

    prompt = tokenizer.apply_chat_template(messages(task, description, schema, context), tokenize=False,
                                           add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(model.device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = []
    for k in range(tries):
        t0 = time.perf_counter()
        torch.manual_seed(seed + k)
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=temperature > 0,
                                 temperature=temperature if temperature > 0 else None, top_p=1.0, top_k=0,
                                 repetition_penalty=1.0, max_new_tokens=max_new_tokens, pad_token_id=pad)
        text = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        row = {"try": k + 1, "valid": False, "error": "", "text": text[:300]}
        try:
            start, end = text.index("{"), text.rindex("}") + 1
            validate(json.loads(text[start:end]), schema, name="the model's text")
            row["valid"] = True
        except ValueError as e:  # no braces, bad JSON (JSONDecodeError) or a bad plan (ParameterError)
            row["error"] = (str(e) if isinstance(e, ParameterError) else f"not a JSON plan: {e}")[:200]
        row["seconds"] = round(time.perf_counter() - t0, 3)
        rows.append(row)
        if row["valid"]:
            break
    return rows
