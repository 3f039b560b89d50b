"""Input validation of the PID solver: clear one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interplay.data import pmfs
from interplay.pid import SUM_TOLERANCE, PIDInputError, broja, broja_batch, validate_pmf


def _error(P, **kwargs) -> str:  # noqa: ANN001
    with pytest.raises(PIDInputError) as info:
        broja(P, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_is_a_value_error() -> None:
    assert issubclass(PIDInputError, ValueError)


def test_negative_entries() -> None:
    P = pmfs.xor()
    P[0, 0, 0] = -0.1
    P[0, 0, 1] = 0.35
    assert "negative" in _error(P)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf(bad: float) -> None:
    P = pmfs.and_()
    P[1, 1, 1] = bad
    assert "NaN or inf" in _error(P)


@pytest.mark.parametrize("shape", [(4,), (2, 2), (2, 2, 2, 2)])
def test_wrong_number_of_axes(shape: tuple[int, ...]) -> None:
    P = np.full(shape, 1.0 / np.prod(shape))
    msg = _error(P)
    assert "3 axes" in msg and str(shape) in msg


def test_batch_needs_four_axes() -> None:
    with pytest.raises(PIDInputError, match="4 axes"):
        broja_batch(pmfs.xor())


def test_empty_axis() -> None:
    assert "length >= 1" in _error(np.zeros((2, 0, 2)))


def test_sum_far_from_one() -> None:
    msg = _error(pmfs.xor() * 1.01)
    assert "1.01" in msg and f"{SUM_TOLERANCE:g}" in msg and "normalize=True" in msg


def test_sum_within_tolerance_is_accepted_and_renormalised() -> None:
    P = pmfs.and_() * (1 + 0.5 * SUM_TOLERANCE)
    r = broja(P)
    assert r.synergy == pytest.approx(0.5, abs=1e-9)
    np.testing.assert_allclose(r.q.sum(), 1.0, atol=1e-15)


def test_normalize_counts() -> None:
    counts = np.array([[[5, 0], [5, 0]], [[5, 0], [0, 5]]])  # AND as counts (integer dtype)
    r = broja(counts, normalize=True)
    assert r.synergy == pytest.approx(0.5, abs=1e-9)
    assert "all zero" in _error(np.zeros((2, 2, 2)), normalize=True)
    assert "sums to 0" in _error(np.zeros((2, 2, 2)))


def test_non_numeric_and_complex() -> None:
    assert "dtype" in _error(np.array([[["a", "b"]]]))
    assert "dtype" in _error(np.ones((2, 2, 2), dtype=complex) / 8)
    with pytest.raises(PIDInputError, match="real-valued"):
        broja(torch.ones(2, 2, 2, dtype=torch.complex128) / 8)
    assert "converted" in _error([[[0.5, 0.5]], [[0.5]]])  # ragged


def test_batch_error_names_the_worst_pmf() -> None:
    Ps = np.stack([pmfs.xor(), pmfs.xor() * 0.5])
    with pytest.raises(PIDInputError, match="sums to 0.5"):
        broja_batch(Ps)


def test_validate_pmf_returns_float64_tensor() -> None:
    t = validate_pmf(pmfs.xor().astype(np.float32))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64
    assert float(t.sum()) == pytest.approx(1.0, abs=1e-15)
