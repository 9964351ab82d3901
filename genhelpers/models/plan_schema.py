"""The plan's schema as plain data, and the checks a plan must pass (``genhelpers.models.planner`` fills it with an
LLM; this half needs no model and imports no torch, so a notebook's inputs cell can check a hand-edited plan before
anything loads). Everything here is re-exported by ``planner``: import it from there."""
from __future__ import annotations

import difflib
import json
import math
import numbers
from dataclasses import dataclass, replace

from ..errors import ParameterError

KINDS = ("choice", "bool", "int", "float", "text")
SOURCES = ("model", "fallback", "not applicable", "user")


@dataclass(frozen=True)
class Field:
    """One value of a plan. ``kind``: choice | bool | int | float | text. ``when``: ``(name, allowed)``, the field
    applies only when the field ``name`` (a dotted path from the object being filled, else from the root) has one of the
    ``allowed`` values. Two fields may share a name with exclusive ``when`` conditions (a joint list per
    operator). ``mode`` for numbers: "read" (digits generated, read within the range) or "grid" (ranked)."""
    name: str
    kind: str
    default: object
    doc: str = ""
    choices: tuple = ()
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    when: tuple | None = None
    unit: str = ""
    mode: str = "read"
    max_new_tokens: int = 150  # text fields

    def __post_init__(self):
        assert self.kind in KINDS, self.kind
        assert self.kind != "choice" or self.default in self.choices, (self.name, self.default)
        assert self.kind not in ("int", "float") or self.lo <= self.default <= self.hi, (self.name, self.default)


@dataclass(frozen=True)
class ListField:
    """A list of ``min_items``..``max_items`` objects, each made of ``fields``; ``default`` holds the default
    items (partial dicts, completed with the fields' defaults)."""
    name: str
    fields: tuple
    min_items: int
    max_items: int
    default: tuple = ({},)
    doc: str = ""
    when: tuple | None = None


@dataclass(frozen=True)
class Group:
    """A named object of ``fields`` (e.g. ``terrain``: type, relief, material…)."""
    name: str
    fields: tuple
    doc: str = ""
    when: tuple | None = None


# ----------------------------------------------------------------------------------------------- the schema
def _lookup(name: str, obj: dict, root: dict):
    """A field's value by name or dotted path, looked up in the object being filled first, then from the root."""
    for node in (obj, root):
        for part in name.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return node
    return None


def _allowed(node) -> tuple:
    allowed = node.when[1]
    return tuple(allowed) if isinstance(allowed, (tuple, list)) else (allowed,)


def applies(node, obj: dict, root: dict) -> bool:
    return node.when is None or _lookup(node.when[0], obj, root) in _allowed(node)


def _when_text(node) -> str:
    return "" if node.when is None else \
        f" (only when {node.when[0]} is {' or '.join(json.dumps(a) for a in _allowed(node))})"


def _fill_defaults(nodes, obj: dict, root: dict) -> dict:
    for node in nodes:
        if node.name in obj or not applies(node, obj, root):
            continue
        if isinstance(node, Field):
            obj[node.name] = node.default
        elif isinstance(node, Group):
            obj[node.name] = _fill_defaults(node.fields, {}, root)
        else:
            obj[node.name] = [_fill_defaults(node.fields, dict(item), root) for item in node.default]
    return obj


def defaults(schema) -> dict:
    """The plan made of every applicable field's default."""
    root: dict = {}
    return _fill_defaults(schema, root, root)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}" if abs(v) >= 1e-4 or v == 0 else repr(v)
    return json.dumps(v)


def _range_text(f: Field) -> str:
    return f"[{_fmt(f.lo)}, {_fmt(f.hi)}]{' ' + f.unit if f.unit else ''}"


def listing(schema, indent: str = "") -> str:
    """The schema as the prompt shows it: one line per field with its options or range."""
    lines = []
    for node in schema:
        cond = _when_text(node)
        if isinstance(node, Field):
            what = {"choice": "one of " + ", ".join(json.dumps(c) for c in node.choices), "bool": "true or false",
                    "int": "whole number in " + _range_text(node), "float": "number in " + _range_text(node),
                    "text": "a short text"}[node.kind]
            lines.append(f"{indent}{node.name}: {what}{cond}. {node.doc}".rstrip())
        elif isinstance(node, Group):
            lines.append(f"{indent}{node.name}: an object{cond}. {node.doc}".rstrip())
            lines.append(listing(node.fields, indent + "  "))
        else:
            lines.append(f"{indent}n_{node.name}: how many {node.name} ({node.min_items} to {node.max_items}){cond}")
            lines.append(f"{indent}{node.name}: a list of objects. {node.doc}".rstrip())
            lines.append(listing(node.fields, indent + "  "))
    return "\n".join(lines)


def check_json_text(name: str, v) -> None:
    """A notebook's ``plan_json`` parameter: "" (ask the model) or a JSON text (checked against the schema in the
    notebook's inputs cell, where the schema is known)."""
    if not isinstance(v, str):
        raise ParameterError(name, f"{name} must be a text: \"\" to let the model plan, or the plan's JSON "
                                   f"(copy it from the notebook's output and edit it)")
    if v.strip():
        try:
            json.loads(v)
        except json.JSONDecodeError as e:
            raise ParameterError(name, f"{name} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                                       f"copy the plan printed by the notebook and edit its values") from None


def to_json(plan, indent: int | None = 1) -> str:
    return json.dumps(plan, indent=indent, ensure_ascii=False)


# ----------------------------------------------------------------------------------------------- validation
def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _check_field(f: Field, v, path: str, name: str):
    bad = f"{name}: {path}={v!r}"
    if f.kind == "choice":
        if v not in f.choices:
            close = difflib.get_close_matches(str(v), [str(c) for c in f.choices], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ParameterError(name, f"{bad} is not an option{hint}: choose one of "
                                       + ", ".join(repr(c) for c in f.choices))
    elif f.kind == "bool":
        if not isinstance(v, bool):
            raise ParameterError(name, f"{bad} must be true or false (JSON booleans, no quotes)")
    elif f.kind == "text":
        if not isinstance(v, str):
            raise ParameterError(name, f"{bad} must be a text in quotes")
    else:
        if not (_is_int(v) if f.kind == "int" else _is_number(v)):
            kind = "a whole number" if f.kind == "int" else "a number"
            raise ParameterError(name, f"{bad} must be {kind} in {_range_text(f)}")
        if not f.lo <= v <= f.hi:
            near = f.lo if v < f.lo else f.hi
            raise ParameterError(name, f"{bad} is outside {_range_text(f)}: the nearest valid value is {_fmt(near)}"
                                       + (f" ({f.doc})" if f.doc else ""))
    return v


def _validate(nodes, obj, root: dict, path: str, name: str) -> dict:
    where = path or "the plan"
    if not isinstance(obj, dict):
        raise ParameterError(name, f"{name}: {where} must be a JSON object {{...}}, not {type(obj).__name__}")
    known = {n.name for n in nodes}
    for key in obj:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ParameterError(name, f"{name}: {where} has an unknown field {key!r}{hint}; its fields are "
                                       + ", ".join(sorted(known)))
    out: dict = {}
    for node in nodes:
        sub = f"{path}.{node.name}" if path else node.name
        if not applies(node, {**obj, **out}, root):
            continue
        if node.name in out:  # a second definition of the same name whose condition also holds
            continue
        if node.name not in obj:
            example = to_json(defaults([replace(node, when=None)])[node.name], None)
            raise ParameterError(name, f"{name}: {sub} is missing{_when_text(node)}; add it, e.g. "
                                       f"\"{node.name}\": {example}")
        v = obj[node.name]
        if isinstance(node, Field):
            out[node.name] = _check_field(node, v, sub, name)
        elif isinstance(node, Group):
            out[node.name] = _validate(node.fields, v, root, sub, name)
        else:
            if not isinstance(v, list):
                raise ParameterError(name, f"{name}: {sub} must be a JSON list [...]")
            if not node.min_items <= len(v) <= node.max_items:
                few = len(v) < node.min_items
                limit = f"at least {node.min_items}" if few else f"at most {node.max_items}"
                raise ParameterError(name, f"{name}: {sub} has {len(v)} item(s): it needs {limit}"
                                           + (f" ({node.doc})" if node.doc else ""))
            out[node.name] = [_validate(node.fields, item, root, f"{sub}[{i}]", name) for i, item in enumerate(v)]
        if path == "":
            root[node.name] = out[node.name]
    return out


def validate(plan, schema, name: str = "plan_json") -> dict:
    """The plan, checked against ``schema`` (fields not applicable under ``when`` are dropped). Raises
    ``ParameterError`` naming the parameter ``name`` and the field's path, with the fix."""
    root: dict = {}
    return _validate(schema, plan, root, "", name)


def parse(text: str, schema, name: str = "plan_json") -> dict:
    """A plan written (or edited) by hand as JSON text, validated."""
    check_json_text(name, text)
    return validate(json.loads(text), schema, name)



def _row(path: str, value=None, source: str = "model", confidence=None, alternatives=(), raw: str = "") -> dict:
    return {"path": path, "value": value, "source": source, "confidence": confidence,
            "alternatives": list(alternatives), "raw": raw}


# ----------------------------------------------------------------------------------------------- the report
def user_report(plan: dict, schema, path: str = "") -> list:
    """Report rows for a plan given by hand (every value's source: user)."""
    rows, done = [], set()
    for node in schema:
        sub = f"{path}.{node.name}" if path else node.name
        if node.name not in plan or node.name in done:  # (a name defined twice appears once)
            continue
        done.add(node.name)
        if isinstance(node, Field):
            rows.append(_row(sub, plan[node.name], "user"))
        elif isinstance(node, Group):
            rows += user_report(plan[node.name], node.fields, sub)
        else:
            rows.append(_row(f"{sub}[]", len(plan[node.name]), "user"))
            for i, item in enumerate(plan[node.name]):
                rows += user_report(item, node.fields, f"{sub}[{i}]")
    return rows


def counts(report: list) -> dict:
    """How many fields each source decided: {"model": 12, "fallback": 2, …} (only sources that occur)."""
    out = {s: sum(r["source"] == s for r in report) for s in SOURCES}
    return {s: n for s, n in out.items() if n}


def report_table(report: list, width: int = 34) -> str:
    """The report as a fixed-width table: path, value, source, confidence, alternatives or what went wrong."""
    lines = [f"{'field':<{width}} {'value':<18} {'source':<15} {'conf.':>6}  note"]
    for r in report:
        value = "" if r["value"] is None else json.dumps(r["value"], ensure_ascii=False)
        value = value if len(value) <= 18 else value[:15] + "..."
        conf = "" if r["confidence"] is None else f"{r['confidence']:.2f}"
        note = r["raw"] if r["source"] == "fallback" else (
            "next: " + ", ".join(f"{json.dumps(a[0])} {a[1]:.2f}" for a in r["alternatives"][1:])
            if r["alternatives"] else "")
        if r["source"] == "model" and r["confidence"] is None and r["raw"]:
            note = f"wrote {r['raw'][:40]!r}"
        lines.append(f"{r['path']:<{width}} {value:<18} {r['source']:<15} {conf:>6}  {note[:60]}")
    return "\n".join(lines)
