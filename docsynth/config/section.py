"""Configuration files (recipes, mixture files): pydantic sections that reject unknown keys, and
the loading that turns every validation problem into one message with key paths and, for a
misspelt key, the nearest valid one."""

from __future__ import annotations

import difflib
import hashlib
import json
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from docsynth.core.errors import RecipeError


class Section(BaseModel):
    # inf and nan are no setting: `page_timeout_s: .inf` would pass and then overflow a timer
    model_config = ConfigDict(extra="forbid", use_enum_values=True, allow_inf_nan=False)


def config_hash(section: BaseModel | dict, *extra: Any) -> str:
    """Stable short hash of a config section (and anything else that keys an output)."""
    data = section.model_dump(mode="json") if isinstance(section, BaseModel) else section
    blob = json.dumps([data, *extra], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _members(ann: Any) -> list:
    """The types an annotation stands for: Annotated and Optional/Union unwrapped."""
    if typing.get_origin(ann) is Annotated:
        return _members(typing.get_args(ann)[0])
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(ann) for m in _members(a)]
    return [ann]


def _model_at(path: tuple, model: Any) -> type[BaseModel] | None:
    """The pydantic model that holds the key at this path, if any: through nested sections, list
    items (an index in the path) and tagged unions (the tag in the path, as pydantic reports it)."""
    cands = _members(model)
    for key in path:
        nxt = []
        for c in cands:
            if isinstance(key, int) and typing.get_origin(c) is list:
                nxt += _members(typing.get_args(c)[0])
            elif isinstance(c, type) and issubclass(c, BaseModel) and isinstance(key, str):
                if key in c.model_fields:
                    nxt += _members(c.model_fields[key].annotation)
        models = [c for c in cands if isinstance(c, type) and issubclass(c, BaseModel)]
        tagged = [m for m in models if isinstance(key, str) and any(
            f.default == key and typing.get_origin(f.annotation) is Literal for f in m.model_fields.values())]
        cands = nxt or tagged
        if not cands:
            return None
    models = [c for c in cands if isinstance(c, type) and issubclass(c, BaseModel)]
    return models[0] if len(models) == 1 else None


def _describe(err: dict, root: Any) -> str:
    loc = tuple(p for i, p in enumerate(err["loc"]) if not (p == "plugin" and i and isinstance(err["loc"][i - 1], int)))
    where = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1], root)
        valid = sorted(parent.model_fields) if parent else []
        near = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
        hint = f"; did you mean '{'.'.join(map(str, loc[:-1] + (near[0],)))}'?" if near else ""
        return f"{where}: unknown key{hint} (valid keys here: {', '.join(valid)})"
    return f"{where}: {err['msg'].removeprefix('Value error, ')}"


M = typing.TypeVar("M", bound=BaseModel)


def parse_config(model: type[M], data: Any, origin: str, what: str) -> M:
    """Validate a YAML mapping against a config model; RecipeError lists every problem with its
    key path (and the nearest valid key for a misspelt one)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"{origin}: a {what} must be a YAML mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        lines = [_describe(err, model) for err in e.errors()]
        raise RecipeError(f"{origin} is not a valid {what}:\n" + "\n".join(f"  - {x}" for x in lines)) from None


def read_yaml(path: str | Path, what: str) -> Any:
    """A YAML file's content; unreadable or invalid YAML is a RecipeError naming the file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise RecipeError(f"cannot read {what} {p}: {e.strerror or e}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RecipeError(f"{p}: not valid YAML: {e}") from None


def _type_name(ann: Any) -> str:
    if typing.get_origin(ann) is Annotated:
        return _type_name(typing.get_args(ann)[0])
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(ann))
    if typing.get_origin(ann) is Literal:
        return " | ".join(str(a) for a in typing.get_args(ann))
    if typing.get_origin(ann) in (list, dict):
        return f"{typing.get_origin(ann).__name__}[{', '.join(_type_name(a) for a in typing.get_args(ann))}]"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "section"
    if isinstance(ann, type) and issubclass(ann, Enum):
        return " | ".join(str(m.value) for m in ann)
    return getattr(ann, "__name__", str(ann)).replace("NoneType", "null")


def reference(model: type[BaseModel], prefix: str = "", instance: BaseModel | None = None) -> list[tuple[str, str, str, str]]:
    """(key path, type, default, description) of every key of a config model, nested sections
    and each member of a list of tagged sections (the filters) included: the docs' key table.
    A section's own default (verify.sampling's temperature 0) is shown, not its model's."""
    rows = []
    for name, f in model.model_fields.items():
        key = f"{prefix}{name}"
        members = [m for m in _members(f.annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
        items = [m for a in _members(f.annotation) if typing.get_origin(a) is list
                 for m in _members(typing.get_args(a)[0]) if isinstance(m, type) and issubclass(m, BaseModel)]
        default = getattr(instance, name) if instance is not None else (
            None if f.is_required() else f.get_default(call_default_factory=True))
        if members:
            rows += reference(members[0], f"{key}.", default if isinstance(default, members[0]) else None)
            continue
        if isinstance(default, list) and default and isinstance(default[0], BaseModel):
            default = [getattr(d, "name", type(d).__name__) for d in default]
        shown = json.dumps(default.value if isinstance(default, Enum) else default, default=str)
        kind = "list[section]" if items else _type_name(f.annotation)
        rows.append((key, kind, "(required)" if f.is_required() else shown,
                     " ".join((f.description or "").split())))
        for m in items:
            tag = m.model_fields["name"].default if "name" in m.model_fields else m.__name__
            tag = tag if isinstance(tag, str) else ""  # a required name: `sources[].path`
            doc = " ".join((m.__doc__ or "").split())
            rows.append((f"{key}[{tag}]", "section", "", doc))
            rows += [r for r in reference(m, f"{key}[{tag}].") if not r[0].endswith("].name")]
    return rows


def reference_markdown(model: type[BaseModel]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = ["| key | type | default | what it does |", "| --- | --- | --- | --- |"]
    rows += [f"| `{k}` | {cell(t)} | " + (f"`{cell(d)}`" if d else "") + f" | {cell(desc)} |" for k, t, d, desc in reference(model)]
    return "\n".join(rows) + "\n"
