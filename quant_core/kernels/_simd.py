"""Block reductions as single vector operations (numba intrinsics emitting LLVM vector IR).

ggml finds a block's extreme values with a scalar loop whose every step depends on the last
one; numba's loop vectorizer does not touch these short loops (they are unrolled first), so
they cost a long dependency chain per block. These intrinsics load the whole block as one
LLVM vector and reduce it with ``llvm.vector.reduce.*``, then find the first element equal
to the result (``cttz`` of the comparison mask), which gives ggml's first-wins tie rule.

The inputs must be finite (the public wrapper guarantees it): both reductions compare bit
patterns as integers, which orders finite floats exactly as float comparisons do.
Arguments: a C-contiguous 1-D float32 array, a start index and a literal block length n
(1..256); no bounds checks, as in the rest of numba.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_I1 = ir.IntType(1)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_F32 = ir.FloatType()
_LOW31 = 0x7FFFFFFF


def _accepts(arr: types.Type, start: types.Type, n: types.Type) -> bool:
    return (
        isinstance(arr, types.Array)
        and arr.dtype == types.float32
        and arr.ndim == 1
        and arr.layout == "C"
        and isinstance(start, types.Integer)
        and isinstance(n, types.IntegerLiteral)
        and 1 <= n.literal_value <= 256
    )


def _load_block(context, builder, sig, args):
    """(n, pointer to the block's first element, the block as an <n x float> vector)."""
    n = sig.args[2].literal_value
    ary = context.make_array(sig.args[0])(context, builder, args[0])
    start = context.cast(builder, args[1], sig.args[1], types.intp)
    ptr = builder.gep(ary.data, [start])
    vec = builder.load(builder.bitcast(ptr, ir.VectorType(_F32, n).as_pointer()), align=4)
    return n, ptr, vec


def _call(builder, name, ret, argv):
    fnty = ir.FunctionType(ret, [a.type for a in argv])
    return builder.call(cgutils.get_or_insert_function(builder.module, fnty, name), argv)


def _first_equal(builder, ptr, vec, value):
    """The first element of the block equal to ``value`` (float equality: -0.0 == 0.0).

    Read back from memory: extracting a lane at a variable index spills the vector instead.
    """
    n = vec.type.count
    splat = builder.insert_element(ir.Constant(vec.type, ir.Undefined), value, ir.Constant(_I32, 0))
    splat = builder.shuffle_vector(
        splat, ir.Constant(vec.type, ir.Undefined), ir.Constant(ir.VectorType(_I32, n), [0] * n)
    )
    mask = builder.bitcast(builder.fcmp_ordered("==", vec, splat), ir.IntType(n))
    index = _call(builder, f"llvm.cttz.i{n}", ir.IntType(n), [mask, ir.Constant(_I1, 1)])
    if n != 64:
        index = builder.zext(index, _I64) if n < 64 else builder.trunc(index, _I64)
    return builder.load(builder.gep(ptr, [index]))


def _splat(vt: ir.VectorType, value: int) -> ir.Constant:
    return ir.Constant(vt, [value] * vt.count)


def _block_reduction(reduce_block):
    """Intrinsic ``f(arr, start, n) -> (float32, float32)`` from ``reduce_block(builder, ptr, vec)``.

    ``vec`` is the block ``arr[start:start+n]`` as an <n x float> vector and ``ptr`` points at its
    first element; ``reduce_block`` returns the two float32 results.
    """

    def typer(typingctx, arr, start, n):
        if not _accepts(arr, start, n):
            return None
        sig = types.UniTuple(types.float32, 2)(arr, start, n)

        def codegen(context, builder, sig, args):
            _, ptr, vec = _load_block(context, builder, sig, args)
            return context.make_tuple(builder, sig.return_type, reduce_block(builder, ptr, vec))

        return sig, codegen

    typer.__name__ = typer.__qualname__ = reduce_block.__name__
    typer.__doc__ = reduce_block.__doc__
    return intrinsic(typer)


@_block_reduction
def first_absmax(builder, ptr, vec):
    """``(amax, v)``: the largest |x| of ``arr[start:start+n]`` and the first x of that magnitude.

    As ggml's ``if (amax < fabsf(v)) { amax = fabsf(v); max = v; }`` from 0: ``(0, +0.0)`` for
    a block of zeros.
    """
    vt = ir.VectorType(_I32, vec.type.count)
    magnitudes = builder.and_(builder.bitcast(vec, vt), _splat(vt, _LOW31))
    top = _call(builder, f"llvm.vector.reduce.umax.v{vt.count}i32", _I32, [magnitudes])
    amax = builder.bitcast(top, _F32)
    first = _first_equal(builder, ptr, builder.bitcast(magnitudes, vec.type), amax)
    is_zero = builder.icmp_unsigned("==", top, ir.Constant(_I32, 0))
    return [amax, builder.select(is_zero, ir.Constant(_F32, 0.0), first)]


def _float_order(builder, bits):
    """Signed-integer image of the float order: negatives get their magnitude bits flipped.

    An involution, so the same function maps a reduced key back to the float's bits.
    """
    vt = bits.type
    if isinstance(vt, ir.VectorType):
        sign, low = _splat(vt, 31), _splat(vt, _LOW31)
    else:
        sign, low = ir.Constant(vt, 31), ir.Constant(vt, _LOW31)
    return builder.xor(bits, builder.and_(builder.ashr(bits, sign), low))


@_block_reduction
def first_min_max(builder, ptr, vec):
    """``(min, max)`` of ``arr[start:start+n]``, each the first element of that value.

    As ggml's ``if (v < min) min = v; if (v > max) max = v;`` from +/-FLT_MAX: only the sign
    of a zero can tell equal values apart, and the first one wins.
    """
    vt = ir.VectorType(_I32, vec.type.count)
    keys = _float_order(builder, builder.bitcast(vec, vt))
    result = []
    for op in ("smin", "smax"):
        key = _call(builder, f"llvm.vector.reduce.{op}.v{vt.count}i32", _I32, [keys])
        result.append(_first_equal(builder, ptr, vec, builder.bitcast(_float_order(builder, key), _F32)))
    return result


def _accepts_pair(sumqx, sumq2, start, n):
    return (
        all(
            isinstance(a, types.Array) and a.dtype == types.float32 and a.ndim == 1 and a.layout == "C"
            for a in (sumqx, sumq2)
        )
        and isinstance(start, types.Integer)
        and isinstance(n, types.IntegerLiteral)
        and 1 <= n.literal_value <= 64
    )


@intrinsic
def first_better(typingctx, sumqx, sumq2, start, best, n):
    """Offset (0..n-1) of the first candidate ``start + j`` that beats ``best``, or n if none.

    ggml's test of a least-squares candidate against the best score so far:
    ``sumq2 > 0 && sumqx*sumqx > best*sumq2``, on the n candidates from ``start`` at once.
    Scanning a list of candidates with this (taking the first that passes, updating ``best``
    and scanning on after it) makes exactly ggml's one-by-one choices.
    """
    if not (_accepts_pair(sumqx, sumq2, start, n) and best == types.float32):
        return None
    sig = types.intp(sumqx, sumq2, start, best, n)

    def codegen(context, builder, sig, args):
        n = sig.args[4].literal_value
        first = context.cast(builder, args[2], sig.args[2], types.intp)
        vf = ir.VectorType(_F32, n)
        vecs = []
        for k in range(2):
            ary = context.make_array(sig.args[k])(context, builder, args[k])
            ptr = builder.bitcast(builder.gep(ary.data, [first]), vf.as_pointer())
            vecs.append(builder.load(ptr, align=4))
        qx, q2 = vecs
        best = builder.insert_element(ir.Constant(vf, ir.Undefined), args[3], ir.Constant(_I32, 0))
        best = builder.shuffle_vector(best, ir.Constant(vf, ir.Undefined), ir.Constant(ir.VectorType(_I32, n), [0] * n))
        positive = builder.fcmp_ordered(">", q2, ir.Constant(vf, [0.0] * n))
        wins = builder.fcmp_ordered(">", builder.fmul(qx, qx), builder.fmul(best, q2))
        mask = builder.bitcast(builder.and_(positive, wins), ir.IntType(n))
        index = _call(builder, f"llvm.cttz.i{n}", ir.IntType(n), [mask, ir.Constant(_I1, 0)])
        return builder.zext(index, _I64) if n < 64 else index

    return sig, codegen


_LANES = 8  # 32-byte vectors: numba allocates arrays 32-byte aligned


@intrinsic
def stream_copy_u32(typingctx, dst, src, start, nvec):
    """Copy ``nvec`` 8-word vectors ``src[start:start + 8*nvec]`` to ``dst`` with streaming stores.

    Non-temporal stores skip reading the destination into the cache first, which saves a
    third of the memory traffic of a large copy. ``dst[start]`` must be 32-byte aligned.
    Returns the OR over the copied words of ``(w & 0x7F800000) + 0x00800000``: its top bit is
    set exactly when a copied float32 is NaN or infinite (exponent field all ones).
    """
    u32 = types.uint32
    if (
        not all(isinstance(a, types.Array) and a.dtype == u32 and a.ndim == 1 and a.layout == "C" for a in (dst, src))
        or not isinstance(start, types.Integer)
        or not isinstance(nvec, types.Integer)
        or not dst.mutable
    ):
        return None
    sig = u32(dst, src, start, nvec)

    def codegen(context, builder, sig, args):
        d = context.make_array(sig.args[0])(context, builder, args[0])
        s = context.make_array(sig.args[1])(context, builder, args[1])
        first = context.cast(builder, args[2], sig.args[2], types.intp)
        count = context.cast(builder, args[3], sig.args[3], types.intp)
        vt = ir.VectorType(_I32, _LANES)
        seen = cgutils.alloca_once_value(builder, ir.Constant(vt, [0] * _LANES))
        streaming = builder.module.add_metadata([ir.Constant(_I32, 1)])
        with cgutils.for_range(builder, count) as loop:
            at = builder.add(first, builder.mul(loop.index, ir.Constant(first.type, _LANES)))
            words = builder.load(builder.bitcast(builder.gep(s.data, [at]), vt.as_pointer()), align=4)
            store = builder.store(words, builder.bitcast(builder.gep(d.data, [at]), vt.as_pointer()), align=32)
            store.set_metadata("nontemporal", streaming)
            carry = builder.add(builder.and_(words, _splat(vt, 0x7F800000)), _splat(vt, 0x00800000))
            builder.store(builder.or_(builder.load(seen), carry), seen)
        builder.fence("seq_cst")  # streaming stores are weakly ordered: publish them
        return _call(builder, f"llvm.vector.reduce.or.v{_LANES}i32", _I32, [builder.load(seen)])

    return sig, codegen
