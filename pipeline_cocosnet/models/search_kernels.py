"""The Numba kernels of the fused PatchMatch search step (see ``fused_search`` for the equations).

Imported only when a fused step first runs (``fused_search._kernels``): importing Numba costs
about half a second and ~100 MB of resident memory (its LLVM), which GPU runs, ``--help`` and
processes that never reach a PatchMatch level need not pay. Each kernel compiles on its first call
for its dtypes (a few seconds) and is cached on disk (``__pycache__`` beside this file when writable,
else Numba's user cache folder).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

# error_model="numpy": a division by zero gives inf/NaN, as in numpy and torch, instead of Python's
# ZeroDivisionError, whose test before every division kept the softmax's loops scalar (~5 % of a step)
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
_jit_parallel = numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")

@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "nsz"})
def _score(query, table, p, candidates, first, count, scores):  # pragma: no cover - compiled
    """scores[first + t] = Σ_c query[p, c] · table[candidates[first + t], c] for t < count (any summation order)."""
    zero = query[p, 0] - query[p, 0]
    for t in range(first, first + count):
        q = candidates[t]
        total = zero
        for c in range(query.shape[1]):  # from 0: C = 16, 32 … is then whole vectors
            total += query[p, c] * table[q, c]
        scores[t] = total

@_jit
def _row_of(q, reciprocal):  # pragma: no cover - compiled
    """q // w for a flat index q ≥ 0, given 1/w in float64: ⌊(q + ½)·(1/w)⌋.

    Exact for q < 2^50: (q + ½)/w lies at least ½/w from an integer, while the two roundings (of 1/w
    and of the product) move it by at most ~2^-52·q/w. A multiplication, where an integer division
    costs several times more (this step takes 3K of them per pixel).
    """
    return int((q + 0.5) * reciprocal)

#: pixels are visited in TILE×TILE squares: in a coherent match field neighbouring pixels read
#: neighbouring exemplar rows, which a square keeps in the core's L2 longer than a whole image row
TILE = 64


@_jit
def _tile_count(items, h, w):  # pragma: no cover - compiled
    """How many TILE×TILE squares cover ``items`` images of h×w."""
    return items * ((h + TILE - 1) // TILE) * ((w + TILE - 1) // TILE)


@_jit
def _tile_origin(tile, h, w):  # pragma: no cover - compiled
    """(batch item, first row, first column) of square ``tile``, counted row-major within each item."""
    across = (w + TILE - 1) // TILE
    per_item = ((h + TILE - 1) // TILE) * across
    rest = tile % per_item
    return tile // per_item, (rest // across) * TILE, (rest % across) * TILE


def _as_i64(builder, value):
    """An LLVM integer widened to i64 (Numba passes int32 or int64 indices)."""
    return builder.sext(value, ir.IntType(64)) if value.type.width < 64 else value


def _broadcast(builder, value, vector):
    """A vector of type ``vector`` with ``value`` in every lane."""
    i32 = ir.IntType(32)
    one = builder.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(i32, 0))
    zeros = ir.Constant(ir.VectorType(i32, vector.count), [0] * vector.count)
    return builder.shuffle_vector(one, ir.Constant(vector, ir.Undefined), zeros)


@intrinsic
def _prefetch_row(typingctx, table, row):  # pragma: no cover - compiled
    """Ask the cache for row ``row`` of a C-contiguous 2-D table (its first and last byte): a hint, no result."""
    signature = types.void(table, row)

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
        stride = builder.extract_value(array.strides, 0)  # one row's bytes
        start = builder.add(builder.ptrtoint(array.data, i64), builder.mul(_as_i64(builder, args[1]), stride))
        last_byte = builder.sub(stride, ir.Constant(i64, 1))
        prefetch = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8.as_pointer(), i32, i32, i32]), "llvm.prefetch.p0i8"
        )
        for address in (start, builder.add(start, last_byte)):  # read, keep in all levels, data cache
            pointer = builder.inttoptr(address, i8.as_pointer())
            builder.call(prefetch, [pointer, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return signature, codegen


@_jit
def _prefetch_for_next_pixel(table, candidates, first, count):  # pragma: no cover - compiled
    """Prefetch rows candidates[t] + 1 for t in first..first+count−1: where the next pixel (one column on) will look.

    In a coherent match field (a trained model's) the next pixel's candidates are this pixel's one
    exemplar column further, so their rows arrive while this pixel is scored; elsewhere a wasted hint.
    """
    last = table.shape[0] - 1
    for t in range(first, first + count):
        _prefetch_row(table, min(candidates[t] + 1, last))


#: scores ranked per vector instruction (one AVX-512 register of float32; AVX2 and NEON run it as 2–4)
LANES = 16


@intrinsic
def _rank_block(typingctx, scores, n, first, rank):  # pragma: no cover - compiled
    """rank[first + l] = #{u < n : s_u > s_t, or s_u = s_t and u < t} for t = first + l, l < LANES.

    One vector of LANES scores is compared with each s_u in turn, the counts kept in a register:
    earlier candidates (u < first) count where s_u ≥ s_t, later ones (u ≥ first + LANES) where
    s_u > s_t, the block's own lanes by the full rule. ``scores`` and ``rank`` must hold first + LANES
    elements (lanes past n get a count that the caller ignores).
    """
    signature = types.void(scores, n, first, rank)

    def codegen(context, builder, sig, args):
        scores_value, n_value, first_value, rank_value = args
        values = context.make_array(sig.args[0])(context, builder, scores_value).data
        counts = context.make_array(sig.args[3])(context, builder, rank_value).data
        i32, i64 = ir.IntType(32), ir.IntType(64)
        floats = ir.VectorType(context.get_data_type(sig.args[0].dtype), LANES)
        ints = ir.VectorType(context.get_data_type(sig.args[3].dtype), LANES)
        lanes = ir.VectorType(i32, LANES)
        first, n = _as_i64(builder, first_value), _as_i64(builder, n_value)
        block = builder.load(builder.bitcast(builder.gep(values, [first]), floats.as_pointer()), align=1)
        total = cgutils.alloca_once_value(builder, ir.Constant(ints, [0] * LANES))

        def count(start, stop, ahead):
            with cgutils.for_range_slice(builder, start, stop, ir.Constant(i64, 1), intp=i64) as (u, _):
                s_u = _broadcast(builder, builder.load(builder.gep(values, [u])), floats)
                builder.store(builder.add(builder.load(total), builder.zext(ahead(u, s_u), ints)), total)

        def within_block(u, s_u):  # an equal score counts from an earlier lane only
            earlier = builder.icmp_signed(
                "<", _broadcast(builder, builder.trunc(builder.sub(u, first), i32), lanes), ir.Constant(lanes, list(range(LANES)))
            )
            equal = builder.and_(builder.fcmp_ordered("==", s_u, block), earlier)
            return builder.or_(builder.fcmp_ordered(">", s_u, block), equal)

        end = builder.add(first, ir.Constant(i64, LANES))
        end = builder.select(builder.icmp_signed("<", end, n), end, n)
        count(ir.Constant(i64, 0), first, lambda u, s_u: builder.fcmp_ordered(">=", s_u, block))
        count(first, end, within_block)
        count(end, n, lambda u, s_u: builder.fcmp_ordered(">", s_u, block))
        destination = builder.bitcast(builder.gep(counts, [first]), ints.as_pointer())
        builder.store(builder.load(total), destination, align=1)
        return context.get_dummy_value()

    return signature, codegen

@_jit
def keep_best(scores, n, rank, kept):  # pragma: no cover - compiled
    """kept[:K] = the positions of the K largest of scores[:n], descending; equal scores: lower position first.

    The stable rank of each candidate, rank_t = #{u : s_u > s_t} + #{u < t : s_u = s_t}, is a
    permutation of 0..n−1 (for scores without NaN), and kept[rank_t] = t where rank_t < K. Ranks
    are counted LANES candidates at a time in vector registers (``_rank_block``): no branch, since
    candidates arrive in no useful order and a sort would mispredict. ``scores`` and ``rank`` hold
    n rounded up to LANES; ``kept`` holds K + 1 (the last slot takes every rank ≥ K).
    """
    k = kept.shape[0] - 1
    for first in range(0, n, LANES):
        _rank_block(scores, n, first, rank)
    for t in range(k):  # every slot a valid position even if NaN scores share a rank
        kept[t] = t
    for t in range(n):
        kept[min(rank[t], k)] = t

#: float32 exp(x) = 2^m · e^r, m = round(x·log₂e), r = x − m·ln 2 (ln 2 in two parts, the first exact in
#: a float32 product), e^r by Cephes' degree-6 polynomial on |r| ≤ ½ln 2: within 1 ulp of the exact
#: value in the normal range (tests/test_fast_paths.py checks it against float64 exp)
_F32 = np.float32
_LOG2E, _LN2_HIGH, _LN2_LOW = _F32(1.44269504088896341), _F32(0.693359375), _F32(-2.12194440e-4)
_EXP_POLYNOMIAL = tuple(_F32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))


@intrinsic
def _exp_block(typingctx, values, first, underflow):  # pragma: no cover - compiled
    """values[first:first + LANES] = exp of themselves, 0 where ≤ underflow; float32, one vector (the polynomial above).

    ``values`` must hold first + LANES elements (lanes past the caller's n are computed and ignored).
    2^m is built from its bits as two factors 2^⌊m/2⌋ · 2^(m−⌊m/2⌋), both normal for m ≥ −252, so
    that results down to the subnormals round once.
    """
    signature = types.void(values, first, underflow)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        floats, ints = ir.VectorType(ir.FloatType(), LANES), ir.VectorType(ir.IntType(32), LANES)

        def constant(value, vector=floats):
            return ir.Constant(vector, [value] * LANES)

        def call(name, *operands):
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(floats, [floats] * len(operands)), f"llvm.{name}.v{LANES}f32"
            )
            return builder.call(function, operands)

        pointer = builder.bitcast(builder.gep(data, [_as_i64(builder, args[1])]), floats.as_pointer())
        x = builder.load(pointer, align=1)
        lowest = _broadcast(builder, args[2], floats)
        kept = builder.fcmp_ordered(">", x, lowest)
        clamped = call("maxnum", x, lowest)
        m = call("floor", builder.fadd(builder.fmul(clamped, constant(float(_LOG2E))), constant(0.5)))
        r = builder.fsub(clamped, builder.fmul(m, constant(float(_LN2_HIGH))))
        r = builder.fsub(r, builder.fmul(m, constant(float(_LN2_LOW))))
        polynomial = constant(float(_EXP_POLYNOMIAL[0]))
        for coefficient in _EXP_POLYNOMIAL[1:]:
            polynomial = builder.fadd(builder.fmul(polynomial, r), constant(float(coefficient)))
        e_r = builder.fadd(builder.fadd(builder.fmul(polynomial, builder.fmul(r, r)), r), constant(1.0))
        exponent = builder.fptosi(m, ints)
        half = builder.ashr(exponent, constant(1, ints))
        bits = lambda e: builder.bitcast(builder.shl(builder.add(e, constant(127, ints)), constant(23, ints)), floats)
        result = builder.fmul(builder.fmul(e_r, bits(half)), bits(builder.sub(exponent, half)))
        builder.store(builder.select(kept, result, constant(0.0)), pointer, align=1)
        return context.get_dummy_value()

    return signature, codegen


def exponentials(values, underflow):
    """values[t] = exp(values[t]), or exactly 0 where values[t] ≤ underflow; in place, in the values' dtype.

    float32: the polynomial above, LANES values per vector instruction (``_exp_block``; libm's
    expf is a call per value), so ``values`` is a whole number of vectors long. float64 (the
    parity path): libm's exp, one value at a time.
    """
    raise NotImplementedError("compiled only: call it from a Numba kernel")


@overload(exponentials, jit_options={"fastmath": {"contract"}})
def _exponentials(values, underflow):  # pragma: no cover - compiled
    if values.dtype != types.float32:

        def in_libm(values, underflow):
            for t in range(values.shape[0]):
                values[t] = math.exp(values[t]) if values[t] > underflow else values.dtype.type(0)

        return in_libm

    def by_polynomial(values, underflow):
        for first in range(0, values.shape[0], LANES):
            _exp_block(values, first, underflow)

    return by_polynomial


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "nsz"})
def _total(values, n):  # pragma: no cover - compiled
    """Σ values[:n] (in any order: a vector sum)."""
    total = values[0] - values[0]
    for t in range(n):
        total += values[t]
    return total


@_jit
def _softmax_of_kept(scores, n, kept, temperature, underflow, exps, out):  # pragma: no cover - compiled
    """out_k = softmax(scores[:n] / τ)[kept_k] for k < len(out), kept[0] being the largest score; in the scores' dtype.

    Terms whose exponent s_t/τ − max/τ is at or below ``underflow`` (where exp is exactly 0 in the
    dtype) are 0. ``exps`` holds the terms: as long as ``scores`` (whole vectors, see ``exponentials``).
    """
    top = scores[kept[0]] / temperature
    for t in range(exps.shape[0]):
        exps[t] = scores[t] / temperature - top
    exponentials(exps, underflow)
    total = _total(exps, n)
    for k in range(out.shape[0]):
        out[k] = exps[kept[k]] / total

@_jit
def _pixel_scratch(theta, k):  # pragma: no cover - compiled
    """One thread's per-pixel work arrays, reused for every pixel of a tile.

    3K scores (θ's dtype), their candidate indices and ranks, K + 1 kept positions; scores and ranks
    rounded up to whole vectors of LANES for ``keep_best``.
    """
    padded = (3 * k + LANES - 1) // LANES * LANES
    return (
        np.zeros(padded, dtype=theta.dtype),
        np.empty(3 * k, dtype=np.int64),
        np.empty(k + 1, dtype=np.int64),
        np.empty(padded, dtype=np.int32),
    )

@_jit_parallel
def first_half(theta, phi, offsets, vertical, h, w, rows, cols, out_index, out_scores):  # pragma: no cover
    """Propagate fractional offsets along one axis, score the 3K, keep the best K (indices + scores).

    theta, phi: (B·h·w)×C pixel tables; offsets: (B·h·w)×2×K; rows, cols: 0..h−1 and 0..w in
    the offsets' dtype (the index arithmetic stays in that dtype, as in ``offsets_to_indices``).
    Writes out_index ((B·h·w)×K, int32 or int64: flat indices within the item) and out_scores.
    """
    k = offsets.shape[2]
    zero, last_row, last_col, width = rows[0], rows[h - 1], cols[w - 1], cols[w]
    for tile in numba.prange(_tile_count(offsets.shape[0] // (h * w), h, w)):
        b, top, left = _tile_origin(tile, h, w)
        base = b * h * w
        scores, index, kept, rank = _pixel_scratch(theta, k)
        for i in range(top, min(h, top + TILE)):
            row0 = rows[i]
            for j in range(left, min(w, left + TILE)):
                p = base + i * w + j
                col0 = cols[j]
                for part in range(3):  # the previous neighbour's K, the own K, the next neighbour's K
                    si, sj = i, j
                    if part != 1:
                        if vertical:
                            si += part - 1
                        else:
                            sj += part - 1
                    if 0 <= si < h and 0 <= sj < w:
                        source = offsets[base + si * w + sj]
                        for t in range(k):
                            r = min(max(row0 + source[0, t], zero), last_row)
                            c = min(max(col0 + source[1, t], zero), last_col)
                            index[part * k + t] = int(r * width + c)
                    else:  # a border pixel's missing neighbour: the zero offset, i.e. its own position
                        for t in range(k):
                            index[part * k + t] = i * w + j
                for t in range(3 * k):
                    index[t] += base
                _prefetch_for_next_pixel(phi, index, 0, 3 * k)
                _score(theta, phi, p, index, 0, 3 * k, scores)
                keep_best(scores, 3 * k, rank, kept)
                for t in range(k):
                    out_index[p, t] = index[kept[t]] - base
                    out_scores[p, t] = scores[kept[t]]

@_jit_parallel
def second_half(theta, phi, index, kept_scores, vertical, h, w, temperature, underflow, out_offsets, out_probs):  # pragma: no cover
    """Propagate the kept integer indices along the other axis, score the 2K new, keep the best K.

    The previous neighbour's match q lands one exemplar step further (q + step unless on the
    exemplar's last row/column), the next neighbour's one step back; a border pixel's missing
    neighbour is the zero offset (its own position). Writes integer offsets ((B·h·w)×2×K) and
    the kept candidates' probabilities ((B·h·w)×K, softmax over all 3K at τ).
    """
    k = index.shape[1]
    reciprocal = 1.0 / w
    for tile in numba.prange(_tile_count(index.shape[0] // (h * w), h, w)):
        b, top, left = _tile_origin(tile, h, w)
        base = b * h * w
        scores, candidates, kept, rank = _pixel_scratch(theta, k)
        probs = np.empty(k, dtype=theta.dtype)
        exps = np.empty_like(scores)
        for i in range(top, min(h, top + TILE)):
            for j in range(left, min(w, left + TILE)):
                p = base + i * w + j
                for t in range(k):
                    candidates[k + t] = base + index[p, t]
                    scores[k + t] = kept_scores[p, t]
                for part in (0, 2):
                    forward = part == 0  # from the previous neighbour, moved one step further
                    si, sj = i, j
                    if vertical:
                        si += -1 if forward else 1
                    else:
                        sj += -1 if forward else 1
                    if 0 <= si < h and 0 <= sj < w:
                        source = base + si * w + sj
                        for t in range(k):
                            q = index[source, t]
                            row = _row_of(q, reciprocal)
                            if vertical:
                                coordinate, last, step = row, h - 1, w
                            else:
                                coordinate, last, step = q - row * w, w - 1, 1
                            if forward and coordinate < last:
                                q += step
                            elif not forward and coordinate > 0:
                                q -= step
                            candidates[part * k + t] = base + q
                    else:
                        for t in range(k):
                            candidates[part * k + t] = p
                _prefetch_for_next_pixel(phi, candidates, 0, k)
                _prefetch_for_next_pixel(phi, candidates, 2 * k, k)
                _score(theta, phi, p, candidates, 0, k, scores)
                _score(theta, phi, p, candidates, 2 * k, k, scores)
                keep_best(scores, 3 * k, rank, kept)
                _softmax_of_kept(scores, 3 * k, kept, temperature, underflow, exps, probs)
                for t in range(k):
                    q = candidates[kept[t]] - base
                    row = _row_of(q, reciprocal)
                    out_offsets[p, 0, t] = row - i
                    out_offsets[p, 1, t] = q - row * w - j
                    out_probs[p, t] = probs[t]
