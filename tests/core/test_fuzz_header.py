"""Fuzz: structured mutations of a valid GGUF header open cleanly or fail with one QuantError line.

Each case applies a few mutations to :func:`valid_header` (counts, offsets, dimensions, types,
string lengths, key types, hyper-parameter types, duplicates, alignment), then may truncate the
file or flip bytes. The file must either open, plan and size-project without an exception, or
raise a :class:`QuantError` subclass with a one-line message. Numpy warnings are errors in this
suite, so an overflow warning fails the case too. Derandomized: every run tries the same cases.
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quant_core.errors import QuantError
from quant_core.export import iter_export
from quant_core.model import open_model
from quant_core.plan import QuantOptions, build_plan
from quant_core.size import project_size

from .gguf_bytes import ARR, BOOL, F32, STR, U32, U64, Header, kv, valid_header

MAX_EXAMPLES = 2000
U64_MAX = 2**64 - 1
EDGE_INTS = [0, 1, 2, 3, 31, 32, 33, 63, 64, 255, 256, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, U64_MAX]
ints = st.one_of(st.sampled_from(EDGE_INTS), st.integers(0, U64_MAX))
small = st.integers(0, 100)
Mutation = Callable[[Header], None]
OUTCOMES: Counter[str] = Counter()


def _pick(items: list, i: int):
    return items[i % len(items)] if items else None


@st.composite
def counts(draw: st.DrawFn) -> Mutation:
    which, value = draw(st.sampled_from(["n_kv", "n_tensors"])), draw(ints)
    return lambda h: setattr(h, which, value)


@st.composite
def tensor_fields(draw: st.DrawFn) -> Mutation:
    i, attr = draw(small), draw(st.sampled_from(["dim", "n_dims", "dims", "ttype", "offset", "name", "name_len"]))
    value = {
        "dim": st.tuples(small, st.one_of(ints, st.integers(-3, -1))),
        "n_dims": st.one_of(st.integers(0, 8), ints),
        "dims": st.lists(st.sampled_from([0, 1, 3, 32, 64, 256, 2**32, 2**63]), max_size=6),
        "ttype": st.one_of(st.integers(0, 45), ints),
        "offset": ints,
        "name": st.one_of(st.binary(max_size=80), st.sampled_from([b"n" * 63, b"n" * 64, b"blk.0.attn_q.weight"])),
        "name_len": ints,
    }[attr]
    v = draw(value)

    def mutate(h: Header) -> None:
        t = _pick(h.tensors, i)
        if t is None:
            return
        if attr == "dim":
            if t.dims:
                t.dims[v[0] % len(t.dims)] = v[1]
        else:
            setattr(t, attr, v)

    return mutate


@st.composite
def kv_fields(draw: st.DrawFn) -> Mutation:
    i, attr = draw(small), draw(st.sampled_from(["vtype", "key_len", "payload", "cut", "key"]))
    v = draw(
        {
            "vtype": st.one_of(st.integers(0, 15), ints),
            "key_len": ints,
            "payload": st.binary(max_size=40),
            "cut": small,
            "key": st.one_of(st.binary(max_size=20), st.sampled_from([b"general.name", b"llama.block_count"])),
        }[attr]
    )

    def mutate(h: Header) -> None:
        pair = _pick(h.kvs, i)
        if pair is None:
            return
        if attr == "cut":
            pair.payload = pair.payload[: v % (len(pair.payload) + 1)]
        else:
            setattr(pair, attr, v)

    return mutate


HPARAMS = ["llama.block_count", "llama.attention.head_count", "llama.attention.head_count_kv", "llama.expert_count"]
HPARAMS += ["general.architecture", "general.alignment"]
VALUES = [
    (U32, 0, None),
    (U32, 64, None),
    (U32, 3, None),
    (U32, 2**31, None),
    (U32, 2**32 - 1, None),
    (U64, 2, None),
    (STR, "2", None),
    (F32, 2.0, None),
    (BOOL, True, None),
    (ARR, [], U32),
    (ARR, [1], U32),
    (ARR, [2, 2], U32),
    (ARR, [1.0], F32),
    (ARR, [b"x"], STR),
]


@st.composite
def hparams(draw: st.DrawFn) -> Mutation:
    key, (vtype, value, sub) = draw(st.sampled_from(HPARAMS)), draw(st.sampled_from(VALUES))
    append = draw(st.booleans())  # append: a duplicate key if the key exists

    def mutate(h: Header) -> None:
        if not append:
            h.kvs = [p for p in h.kvs if p.key != key.encode()]
        h.kvs.append(kv(key, vtype, value, sub))

    return mutate


@st.composite
def structure(draw: st.DrawFn) -> Mutation:
    what, i, j = (
        draw(st.sampled_from(["drop_tensor", "dup_tensor", "swap", "version", "align"])),
        draw(small),
        draw(small),
    )

    def mutate(h: Header) -> None:
        if what == "version":
            h.version = i % 5
        elif what == "align":
            h.align = 64
        elif h.tensors:
            a, b = i % len(h.tensors), j % len(h.tensors)
            if what == "drop_tensor":
                del h.tensors[a]
            elif what == "dup_tensor":
                h.tensors.append(h.tensors[a])
            else:
                h.tensors[a], h.tensors[b] = h.tensors[b], h.tensors[a]

    return mutate


mutations = st.lists(st.one_of(counts(), tensor_fields(), kv_fields(), hparams(), structure()), min_size=1, max_size=3)
intact = st.just((None, []))
damage = st.one_of(
    intact,
    intact,  # two files in three are left whole: the structured mutations are the point
    st.tuples(
        st.one_of(st.none(), st.integers(4, 1200)),  # cut the file after this many bytes (the header is ~1 KB)
        st.lists(st.tuples(st.integers(4, 1200), st.integers(0, 255)), max_size=3),  # byte flips after the magic
    ),
)


def _bytes(muts: list[Mutation], dmg: tuple) -> bytes:
    h = valid_header()
    for m in muts:
        m(h)
    data = bytearray(h.to_bytes())
    keep, flips = dmg
    for where, byte in flips:
        data[min(where, len(data) - 1)] = byte
    if keep is not None:
        data = data[:keep]
    return bytes(data)


def _reason(err: QuantError) -> str:
    """A coarse class of the refusal for the summary (message with numbers and names removed)."""
    text = str(err).split(": ", 1)[-1]
    text = re.sub(r"^tensor \S+|^[a-z_]+\.\S+", "X", text)  # the tensor or key the message names
    text = re.sub(r"'[^']*'|\([^)]*\)|\[[^\]]*\]|\d+", "", text)
    return f"{type(err).__name__}: " + " ".join(text.split()[:5])


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)
    if OUTCOMES:
        total = sum(OUTCOMES.values())
        lines = [f"{n:5d}  {k}" for k, n in OUTCOMES.most_common()]
        print(f"\nheader fuzz: {total} cases\n" + "\n".join(lines))


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(muts=mutations, dmg=damage)
def test_mutated_header_opens_or_is_refused_in_one_line(workdir: Path, muts: list[Mutation], dmg: tuple) -> None:
    path = workdir / "fuzz.gguf"
    path.write_bytes(_bytes(muts, dmg))
    try:
        model = open_model(path)
        report = project_size(model, build_plan(model, QuantOptions(preset="Q4_K_M")))
    except QuantError as err:
        assert str(err) and "\n" not in str(err), repr(str(err))
        OUTCOMES["refused: " + _reason(err)] += 1
        return
    assert report.file_bytes > 0
    OUTCOMES["opened and planned"] += 1


@settings(
    max_examples=MAX_EXAMPLES // 20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(muts=mutations)
def test_what_opens_exports_a_file_that_opens(workdir: Path, muts: list[Mutation]) -> None:
    """A mutated header that is accepted exports a file our gguf.cpp checks accept too."""
    path, out = workdir / "fuzz-src.gguf", workdir / "fuzz-out.gguf"
    path.write_bytes(_bytes(muts, (None, [])))
    try:
        model = open_model(path)
        plan = build_plan(model, QuantOptions(preset="Q8_0"))
        for _ in iter_export(model, plan, out):
            pass
    except QuantError as err:
        assert str(err) and "\n" not in str(err), repr(str(err))
        OUTCOMES["export case refused: " + _reason(err)] += 1
        return
    written = open_model(out)
    assert sorted(t.name for t in written.tensors) == sorted(t.name for t in model.tensors)
    assert written.file_size == project_size(model, plan).file_bytes
    OUTCOMES["export case exported and reopened"] += 1
