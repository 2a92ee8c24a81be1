"""Temporary instance-level overrides of an upstream module's methods, stackable.

Upstream's ``generate`` forwards none of our arguments to its two inner ``generate`` calls (talker and code
predictor), so per-row sampling and the static-cache decoding both reach them by wrapping those methods on the
instance for a block. Each override restores exactly what it found (an earlier override, or the class method), so
nested blocks unwind in order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_MISSING = object()


@contextmanager
def overridden(module, name: str, wrap: Callable[[Callable], Callable]) -> Iterator[None]:
    """For the block, ``module.<name>`` is ``wrap(current method)``. The wrapper keeps the wrapped method's
    signature (``functools.wraps``): Hugging Face's ``generate`` inspects ``prepare_inputs_for_generation``'s
    parameters to decide which inputs a model accepts."""
    current = getattr(module, name)
    saved = module.__dict__.get(name, _MISSING)
    setattr(module, name, functools.wraps(current)(wrap(current)))
    try:
        yield
    finally:
        if saved is _MISSING:
            delattr(module, name)  # the instance attribute: the class method shows through again
        else:
            setattr(module, name, saved)
