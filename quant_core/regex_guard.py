"""Refuse tensor-name regexes whose backtracking could explode.

Python's ``re`` backtracks, so a pattern such as ``(a+)+b`` or ``(a|a)*b`` takes exponential
time on a name that almost matches, and ``.*.*.*.*.*x`` polynomial time of a high degree. Such
a pattern could hang the CLI or the app on a 63-byte tensor name. The rule is structural and
checked once, when the pattern is parsed: a repeated group may not itself contain a repetition
or an alternation (nested quantifiers), and a pattern may not chain more than
``MAX_VARIABLE`` variable repetitions (``*``, ``+``, ``?``, ``{m,n}``). Everything a tensor rule needs
(``blk\\.(1|2)\\.attn_.*``, ``ffn_(up|down)``, ``\\d+``) stays accepted.
"""

from __future__ import annotations

import re
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

MAX_VARIABLE = 3  # chained variable repetitions: about n^4 steps at most on an n-byte name

_REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT)


class UnsafePatternError(Exception):
    """A pattern refused by :func:`check_pattern`; the message says why."""


def check_pattern(pattern: str) -> None:
    """Raise UnsafePatternError if matching ``pattern`` could backtrack catastrophically.

    ``re.error`` propagates for an invalid pattern.
    """
    try:
        re.compile(pattern)  # the errors only the compiler finds (e.g. variable-width look-behind)
        chain = _chain(sre_parse.parse(pattern))
    except RecursionError:
        raise UnsafePatternError("groups nested too deeply") from None
    if chain > MAX_VARIABLE:
        raise UnsafePatternError(
            f"more than {MAX_VARIABLE} repetitions (*, +, ?, {{m,n}}) in a row can take hours to match"
        )


def _chain(items: Any) -> int:
    """Variable repetitions on the longest path through ``items``; refuses nesting."""
    total = 0
    for op, av in items:
        if op in _REPEATS:
            low, high, body = av
            if high > 1 and _has_choice(body):
                raise UnsafePatternError(
                    "nested quantifiers (a repeated group containing *, +, ?, {m,n} or |) can backtrack without end"
                )
            total += int(low != high) + (high > 1 and _chain(body))
        elif op is sre_constants.SUBPATTERN:
            total += _chain(av[-1])
        elif op is sre_constants.BRANCH:
            total += max(_chain(b) for b in av[1])
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            total += _chain(av[1])
        elif op is sre_constants.ATOMIC_GROUP:
            total += _chain(av)
    return total


def _has_choice(items: Any) -> bool:
    """Whether ``items`` contains a repetition of more than one or an alternation."""
    for op, av in items:
        if (op in _REPEATS and av[0] != av[1]) or op is sre_constants.BRANCH:
            return True
        if op is sre_constants.SUBPATTERN and _has_choice(av[-1]):
            return True
        if op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT) and _has_choice(av[1]):
            return True
        if op is sre_constants.ATOMIC_GROUP and _has_choice(av):
            return True
    return False


def compile_safe(pattern: str) -> re.Pattern[str]:
    """``re.compile(pattern)`` after :func:`check_pattern`."""
    check_pattern(pattern)
    return re.compile(pattern)
