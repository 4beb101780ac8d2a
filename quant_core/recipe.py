"""Recipes: a plan's inputs as a JSON file, and the equivalent llama-quantize command line.

A recipe holds the preset, llama-quantize's options (including ``--tensor-type`` rules) and
explicit per-tensor types. It round-trips through JSON unchanged. The GUI saves
:func:`readable_recipe`: its hand-chosen types written as compact rules, no per-tensor entries.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .compact_rules import compact_rules
from .encoders import identity_note, parse_encoder, parse_tensor_encoder
from .errors import QuantError
from .ftypes import file_type
from .inputs import decode_utf8, read_input_text
from .layout import parse_override_kv
from .model import Model
from .plan import Plan, QuantOptions, parse_tensor_type, parse_type

RECIPE_FORMAT = "quant-explorer-recipe"
RECIPE_VERSION = 2
"""Version 2 adds the encoder options; a recipe without them is still written as version 1."""
_ENCODER_OPTIONS = ("encoder", "tensor_encoders", "encoders")


class RecipeError(QuantError):
    """A recipe file that cannot be read."""


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a plan, independent of the GUI."""

    options: QuantOptions = field(default_factory=QuantOptions)
    explicit: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        opts = asdict(self.options)
        opts["tensor_types"] = [f"{p}={t}" for p, t in self.options.tensor_types]
        opts["tensor_encoders"] = [f"{p}={e}" for p, e in self.options.tensor_encoders]
        opts["encoders"] = dict(sorted(self.options.encoders))
        default = QuantOptions()
        for name in _ENCODER_OPTIONS:  # unchanged files for recipes that keep ggml's encoder
            if getattr(self.options, name) == getattr(default, name):
                del opts[name]
        doc = {
            "format": RECIPE_FORMAT,
            "version": RECIPE_VERSION if any(n in opts for n in _ENCODER_OPTIONS) else 1,
            "options": opts,
            "explicit": dict(sorted(self.explicit.items())),
        }
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Recipe:
        doc = _parse_json(text)
        if not isinstance(doc, dict) or doc.get("format") != RECIPE_FORMAT:
            raise RecipeError("not a quant-explorer recipe (missing 'format' field)")
        version = doc.get("version", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise RecipeError(f"recipe 'version' must be a number, got {_describe(version)}")
        if version > RECIPE_VERSION:
            raise RecipeError(f"recipe version {doc['version']} is newer than this program supports")
        return cls(options=_options(doc.get("options", {})), explicit=_explicit(doc.get("explicit", {})))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        return cls.from_json(read_input_text(path, "recipe", RecipeError))


def _parse_json(text: str | bytes) -> Any:
    """The JSON document of a recipe; invalid text, absurd nesting or numbers are one line."""
    if isinstance(text, bytes):
        text = decode_utf8(text, "recipe", RecipeError)
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as err:
        raise RecipeError(f"not a recipe (invalid JSON: {err.msg} at line {err.lineno})") from None
    except RecursionError:
        raise RecipeError("not a recipe (JSON nested too deeply)") from None
    except RecipeError:
        raise
    except ValueError as err:  # e.g. an integer of thousands of digits
        raise RecipeError(f"not a recipe (invalid number: {str(err).splitlines()[0][:80]})") from None


def _no_constant(name: str) -> Any:
    raise RecipeError(f"not a recipe ({name} is not a JSON number)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise RecipeError(f"not a recipe (number {text[:40]} is out of range)")
    return value


def _options(raw: Any) -> QuantOptions:
    if not isinstance(raw, dict):
        raise RecipeError("recipe 'options' must be an object")
    unknown = sorted(set(raw) - set(_OPTION_READERS))
    if unknown:
        raise RecipeError(f"unknown recipe option {unknown[0]!r}")
    values = {}
    for name, value in raw.items():
        try:
            values[name] = _OPTION_READERS[name](value)
        except QuantError as err:
            raise RecipeError(f"recipe option {name!r}: {err}") from None
    return QuantOptions(**values)


def check_options(options: QuantOptions) -> None:
    """Check every value of ``options`` as a recipe file would be checked; raises RecipeError.

    For options built in code (the GUI) rather than read: the message names the field.
    """
    raw = Recipe(options).to_json()
    _options(json.loads(raw)["options"])


def _explicit(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise RecipeError("recipe 'explicit' must map tensor names to types")
    out = {}
    for name, t in raw.items():
        try:
            out[_unicode(name)] = parse_type(_string(t))
        except QuantError as err:
            raise RecipeError(f"recipe 'explicit' entry {name!r}: {err}") from None
    return out


# --- one reader per option: the JSON value in, the QuantOptions value out ---------------------


def _describe(value: Any) -> str:
    return "null" if value is None else f"{json.dumps(value)[:40]} ({type(value).__name__})"


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise RecipeError(f"expected a string, got {_describe(value)}")
    return _unicode(value)


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecipeError(f"expected a list of strings, got {_describe(value)}")
    return tuple(_unicode(v) for v in value)


def _unicode(text: str) -> str:
    """``text`` unless it holds a lone surrogate (a ``\\udcff`` escape), which UTF-8 cannot encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RecipeError(f"{text[:40]!r} is not valid Unicode (lone surrogate)") from None
    return text


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise RecipeError(f"expected true or false, got {_describe(value)}")
    return value


def _optional_type(value: Any) -> str | None:
    return None if value is None or value == "" else parse_type(_string(value))


def _optional_string(value: Any) -> str | None:
    return None if value is None or value == "" else _string(value)


def _override_kv(value: Any) -> tuple[str, ...]:
    entries = _strings(value)
    for entry in entries:
        parse_override_kv(entry)
    return entries


def _tensor_encoders(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple(parse_tensor_encoder(e) for e in _strings(value))


def _encoders(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise RecipeError(f"expected an object of tensor names and encoders, got {_describe(value)}")
    return tuple(sorted((_unicode(name), parse_encoder(_string(e))) for name, e in value.items()))


def _layers(value: Any) -> tuple[int, ...]:
    ok = isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31 for v in value
    )
    if not ok:
        raise RecipeError(f"expected a list of layer numbers (0 to 2^31-1), got {_describe(value)}")
    return tuple(value)


_OPTION_READERS: dict[str, Callable[[Any], Any]] = {
    "preset": lambda v: file_type(_string(v)).name,
    "tensor_types": lambda v: tuple(parse_tensor_type(e) for e in _strings(v)),
    "output_tensor_type": _optional_type,
    "token_embedding_type": _optional_type,
    "pure": _flag,
    "leave_output_tensor": _flag,
    "allow_requantize": _flag,
    "imatrix": _optional_string,
    "include_weights": _strings,
    "exclude_weights": _strings,
    "override_kv": _override_kv,
    "prune_layers": _layers,
    "encoder": lambda v: parse_encoder(_string(v)),
    "tensor_encoders": _tensor_encoders,
    "encoders": _encoders,
}


def llama_quantize_args(
    model: Model, plan: Plan, input_path: str, output_path: str, nthreads: int | None = None
) -> list[str]:
    """Arguments for llama-quantize that produce this plan's file.

    Explicit types become the shortest ``--tensor-type`` rules that reproduce them, placed first
    (see :mod:`quant_core.compact_rules`: a pattern match skips llama.cpp's mixture rules and
    their layer counters, so the rules are verified by re-resolving the plan).
    """
    rules = compact_rules(model, plan)
    return _format_args(replace(plan.options, tensor_types=rules), input_path, output_path, nthreads)


def readable_recipe(model: Model, plan: Plan) -> Recipe:
    """The plan as a recipe of compact ``--tensor-type`` rules instead of per-tensor types.

    Loading it re-resolves to the same types; the tensors' reasons become the rules.
    """
    return Recipe(options=replace(plan.options, tensor_types=compact_rules(model, plan)))


def _format_args(o: QuantOptions, input_path: str, output_path: str, nthreads: int | None) -> list[str]:
    args: list[str] = []
    flags = (
        ("allow_requantize", "--allow-requantize"),
        ("leave_output_tensor", "--leave-output-tensor"),
        ("pure", "--pure"),
    )
    args += [flag for attr, flag in flags if getattr(o, attr)]
    if o.imatrix:
        args += ["--imatrix", o.imatrix]
    for w in o.include_weights:
        args += ["--include-weights", w]
    for w in o.exclude_weights:
        args += ["--exclude-weights", w]
    if o.output_tensor_type:
        args += ["--output-tensor-type", o.output_tensor_type.lower()]
    if o.token_embedding_type:
        args += ["--token-embedding-type", o.token_embedding_type.lower()]
    for pattern, t in o.tensor_types:
        args += ["--tensor-type", f"{pattern}={t.lower()}"]
    for kv in o.override_kv:
        args += ["--override-kv", kv]
    if o.prune_layers:
        args += ["--prune-layers", ",".join(str(i) for i in o.prune_layers)]
    args += [input_path, output_path, o.preset]
    if nthreads:
        args.append(str(nthreads))
    return args


def llama_quantize_command(
    model: Model, plan: Plan, input_path: str, output_path: str, nthreads: int | None = None
) -> str:
    """The shell command line (``llama-quantize ...``) equivalent to this plan.

    With HQQ-encoded tensors it is only equivalent in types and size: a ``#`` comment line
    ahead of it says so (the shell ignores it when the text is pasted).
    """
    command = shlex.join(["llama-quantize", *llama_quantize_args(model, plan, input_path, output_path, nthreads)])
    note = identity_note(plan)
    return command if note is None else f"# {note}: llama-quantize cannot use the HQQ encoder\n{command}"
