"""Runaway generation: the share of generations that hit ``max_new_tokens`` without emitting EOS."""

from __future__ import annotations

from collections.abc import Iterable


def eos_fail_rate(hit_cap_flags: Iterable[bool]) -> float:
    """Fraction of True flags (generation hit the token cap); raises ValueError on no flags (a rate of nothing)."""
    flags = [bool(flag) for flag in hit_cap_flags]
    if not flags:
        raise ValueError("eos_fail_rate of zero generations is undefined")
    return sum(flags) / len(flags)
