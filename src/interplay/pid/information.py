"""Shannon information quantities of discrete pmfs (numpy arrays or torch tensors).

A pmf is an array whose *event* axes index the values of the variables, optionally preceded by
``batch_dims`` leading batch axes (one pmf per batch index). Variables are named by event axes,
counted after the batch axes: for ``P[x1, x2, y]``, ``mutual_information(P, (0,), (2,))`` is
``I(X1; Y)``. Every function works on numpy arrays and on torch tensors (any device) and returns
the same kind: a Python float for an unbatched numpy pmf, a numpy array of shape ``batch`` for a
batched one, a tensor (0-d or of shape ``batch``) for torch input.

Conventions: ``0 log 0 = 0``; zero-probability cells contribute nothing (no NaN); results are in
bits unless ``base`` says otherwise (``base=math.e`` gives nats). The pmf is used as given (it is
not renormalised).

Formulas, with ``H(A) = -sum_a p(a) log p(a)``:

* ``I(A; B)     = H(A) + H(B) - H(A, B)``
* ``I(A; B | C) = H(A, C) + H(B, C) - H(A, B, C) - H(C)``
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
import torch

__all__ = [
    "conditional_mutual_information",
    "entropy",
    "marginal",
    "mutual_information",
    "xlogx_sum",
]


def _is_torch(p: Any) -> bool:
    return isinstance(p, torch.Tensor)


def _as_float64(p: Any) -> np.ndarray | torch.Tensor:
    if _is_torch(p):
        return p.to(torch.float64)
    return np.asarray(p, dtype=np.float64)


def _finish(value: np.ndarray | torch.Tensor) -> Any:
    if _is_torch(value):
        return value
    value = np.asarray(value)
    return float(value) if value.ndim == 0 else value


def marginal(p: Any, keep: Sequence[int], *, batch_dims: int = 0) -> np.ndarray | torch.Tensor:
    """Marginal pmf over the event axes ``keep`` (kept in their original order).

    Args:
        p: pmf of shape ``batch + event``.
        keep: event-axis indices (0-based, after the batch axes) to keep.
        batch_dims: number of leading batch axes.

    Returns:
        Array or tensor of shape ``batch + (event[k] for k in sorted(keep))``.
    """
    p = _as_float64(p)
    n_event = p.ndim - batch_dims
    keep_set = {int(k) % n_event for k in keep}
    drop = tuple(batch_dims + k for k in range(n_event) if k not in keep_set)
    if not drop:
        return p
    if _is_torch(p):
        return p.sum(dim=drop)
    return p.sum(axis=drop)


@overload
def xlogx_sum(p: torch.Tensor, *, batch_dims: int = 0) -> torch.Tensor: ...


@overload
def xlogx_sum(p: Any, *, batch_dims: int = 0) -> np.ndarray: ...


def xlogx_sum(p: Any, *, batch_dims: int = 0) -> np.ndarray | torch.Tensor:
    """``sum p log p`` (natural log) over all event axes, with ``0 log 0 = 0``; shape ``batch``."""
    p = _as_float64(p)
    axes = tuple(range(batch_dims, p.ndim))
    if _is_torch(p):
        terms = torch.special.xlogy(p, p)
        return terms.sum(dim=axes) if axes else terms
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=axes) if axes else terms


def entropy(p: Any, *, batch_dims: int = 0, base: float = 2.0) -> Any:
    """Joint entropy ``H = -sum p log p`` of all event axes of ``p`` (bits by default)."""
    return _finish(-xlogx_sum(p, batch_dims=batch_dims) / math.log(base))


def _h(p: Any, axes: Sequence[int], batch_dims: int) -> np.ndarray | torch.Tensor:
    """Entropy in nats of the marginal over ``axes``."""
    return -xlogx_sum(marginal(p, axes, batch_dims=batch_dims), batch_dims=batch_dims)


def mutual_information(
    p: Any, a: Sequence[int], b: Sequence[int], *, batch_dims: int = 0, base: float = 2.0
) -> Any:
    """``I(A; B) = H(A) + H(B) - H(A, B)`` for disjoint groups of event axes ``a`` and ``b``.

    Axes in neither group are marginalised out. Example: ``mutual_information(P, (0, 1), (2,))``
    is ``I(X1, X2; Y)`` for ``P[x1, x2, y]``.
    """
    a, b = tuple(a), tuple(b)
    if set(a) & set(b):
        raise ValueError(f"mutual_information: axis groups must be disjoint, got {a} and {b}")
    value = _h(p, a, batch_dims) + _h(p, b, batch_dims) - _h(p, a + b, batch_dims)
    return _finish(value / math.log(base))


def conditional_mutual_information(
    p: Any,
    a: Sequence[int],
    b: Sequence[int],
    c: Sequence[int],
    *,
    batch_dims: int = 0,
    base: float = 2.0,
) -> Any:
    """``I(A; B | C) = H(A, C) + H(B, C) - H(A, B, C) - H(C)`` for disjoint axis groups."""
    a, b, c = tuple(a), tuple(b), tuple(c)
    if set(a) & set(b) or set(a) & set(c) or set(b) & set(c):
        raise ValueError(f"conditional_mutual_information: axis groups must be disjoint, got {a}, {b}, {c}")
    value = (
        _h(p, a + c, batch_dims)
        + _h(p, b + c, batch_dims)
        - _h(p, a + b + c, batch_dims)
        - _h(p, c, batch_dims)
    )
    return _finish(value / math.log(base))
