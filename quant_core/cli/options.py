"""llama-quantize's options, spelled as it spells them, shared by quantize / plan / stats."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from ..encoders import parse_encoder, parse_tensor_encoder
from ..errors import QuantError
from ..ftypes import file_type
from ..inputs import read_input_text
from ..model import MetaField, Model, open_model
from ..plan import Plan, PlanError, QuantOptions, build_plan, parse_tensor_type, parse_type
from ..recipe import Recipe
from .like import add_like_option, apply_like, like_preset
from .target import apply_target


def add_quant_options(parser: argparse.ArgumentParser) -> None:
    """Add llama-quantize's options plus ``--recipe`` and ``--threads``."""
    g = parser.add_argument_group("llama-quantize options")
    g.add_argument("--allow-requantize", action="store_true", help="allow requantizing already quantized tensors")
    g.add_argument("--leave-output-tensor", action="store_true", help="leave output.weight unquantized")
    g.add_argument("--pure", action="store_true", help="no mixture rules: every tensor gets the default type")
    g.add_argument("--imatrix", metavar="FILE", help="importance matrix (.dat or GGUF)")
    g.add_argument(
        "--include-weights",
        action="append",
        default=[],
        metavar="NAME",
        help="use imatrix entries containing NAME only (repeatable)",
    )
    g.add_argument(
        "--exclude-weights",
        action="append",
        default=[],
        metavar="NAME",
        help="ignore imatrix entries containing NAME (repeatable)",
    )
    g.add_argument("--output-tensor-type", metavar="TYPE", help="type of output.weight")
    g.add_argument("--token-embedding-type", metavar="TYPE", help="type of token_embd.weight")
    g.add_argument(
        "--tensor-type",
        action="append",
        default=[],
        metavar="PATTERN=TYPE",
        help="regex over tensor names and a type; first match wins (repeatable)",
    )
    g.add_argument("--tensor-type-file", metavar="FILE", help="whitespace-separated PATTERN=TYPE entries")
    g.add_argument(
        "--override-kv",
        action="append",
        default=[],
        metavar="KEY=TYPE:VALUE",
        help="set metadata (TYPE int, float, bool or str; repeatable)",
    )
    g.add_argument("--prune-layers", metavar="L0,L1,...", help="drop these layers and renumber the rest")
    ours = parser.add_argument_group("quant-explorer options")
    ours.add_argument("--recipe", metavar="FILE", help="start from a saved recipe (JSON)")
    ours.add_argument("--threads", type=int, metavar="N", help="threads for quantizing (default: all cores)")
    ours.add_argument(
        "--encoder",
        metavar="ENCODER",
        help="ggml (default, byte-identical to llama-quantize) or hqq: HQQ's optimiser for the tensors "
        "whose type it can encode (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K); same types and size",
    )
    ours.add_argument(
        "--tensor-encoder",
        action="append",
        default=[],
        metavar="PATTERN=ENCODER",
        help="regex over tensor names and an encoder; first match wins, before --encoder (repeatable)",
    )
    add_like_option(ours)


def _tensor_type_entries(args: argparse.Namespace) -> list[tuple[str, str]]:
    entries = [parse_tensor_type(e) for e in args.tensor_type]
    if args.tensor_type_file:
        text = read_input_text(args.tensor_type_file, "tensor type file", PlanError)
        entries += [parse_tensor_type(e) for e in text.split()]
    return entries


def _prune(spec: str | None) -> tuple[int, ...]:
    if not spec:
        return ()
    try:
        layers = sorted({int(x) for x in spec.split(",") if x.strip()})
    except ValueError:
        raise PlanError(f"invalid --prune-layers {spec!r}: expected comma-separated layer numbers") from None
    if any(i < 0 for i in layers):
        raise PlanError("--prune-layers takes non-negative layer numbers")
    return tuple(layers)


def recipe_from_args(args: argparse.Namespace, preset: str | None) -> Recipe:
    """The recipe file (if any) with the command-line options applied on top."""
    recipe = Recipe.load(args.recipe) if args.recipe else Recipe()
    o = recipe.options
    if args.include_weights and args.exclude_weights:
        raise PlanError("--include-weights and --exclude-weights cannot be used together")
    changes: dict[str, Any] = {
        "preset": file_type(preset).name if preset else o.preset,
        "tensor_types": o.tensor_types + tuple(_tensor_type_entries(args)),
        "override_kv": o.override_kv + tuple(args.override_kv),
    }
    for flag in ("allow_requantize", "leave_output_tensor", "pure"):
        if getattr(args, flag):
            changes[flag] = True
    if args.output_tensor_type:
        changes["output_tensor_type"] = parse_type(args.output_tensor_type, "--output-tensor-type")
    if args.token_embedding_type:
        changes["token_embedding_type"] = parse_type(args.token_embedding_type, "--token-embedding-type")
    if args.imatrix:
        changes["imatrix"] = args.imatrix
    if args.include_weights:
        changes["include_weights"] = tuple(args.include_weights)
    if args.exclude_weights:
        changes["exclude_weights"] = tuple(args.exclude_weights)
    if args.prune_layers:
        changes["prune_layers"] = _prune(args.prune_layers)
    if getattr(args, "encoder", None):
        changes["encoder"] = parse_encoder(args.encoder, "--encoder")
    if getattr(args, "tensor_encoder", None):  # ahead of the recipe's rules: first match wins
        changes["tensor_encoders"] = tuple(parse_tensor_encoder(e) for e in args.tensor_encoder) + o.tensor_encoders
    return Recipe(options=replace(o, **changes), explicit=recipe.explicit)


def load_imatrix(options: QuantOptions) -> tuple[Any | None, list[MetaField]]:
    """The filtered importance matrix named by the options and its ``quantize.imatrix.*`` keys."""
    if not options.imatrix:
        return None, []
    from ..imatrix import load_for_quantize

    return load_for_quantize(options.imatrix, options.include_weights, options.exclude_weights)


def open_and_plan(args: argparse.Namespace, preset: str | None) -> tuple[Model, Plan, Any | None, list[MetaField]]:
    """Open the model, read the imatrix and resolve the plan from command-line arguments.

    Without a preset, ``--like`` gives the reference's file type; its mix is cloned onto the plan.
    """
    if preset is None and getattr(args, "like", None):
        preset = like_preset(args)
    recipe = recipe_from_args(args, preset)
    model = open_model(args.input)
    imatrix, keys = load_imatrix(recipe.options)
    plan = apply_like(args, build_plan(model, recipe.options, recipe.explicit))
    plan = apply_target(args, model, plan, imatrix, keys)  # auto-mix, when a budget flag is given
    return model, plan, imatrix, keys


__all__ = ["add_quant_options", "open_and_plan", "recipe_from_args", "load_imatrix", "QuantError"]
