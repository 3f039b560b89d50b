r"""Ground-truth PID of the pid-xor generator's discrete latent distribution.

The ``pid-xor`` generator (``interplay.data.synthetic.pid_xor``, ``shared/spec/synthetic.md``
sections 1 and 4) draws, per sample, a binary label ``y``, a *source* from the mix over
``{unique1, ..., uniqueM, redundant, synergistic}`` and, for the synergistic source, bits
``b_1..b_M`` with ``b_M = y xor b_1 xor ... xor b_{M-1}``. What a modality's features reveal about
that draw is which of its three blocks was overwritten and the sign written there. For a pair of
modalities ``(i, j)`` the *latent* variable of modality ``m`` therefore takes 7 values::

    none                 no block of x_m carries signal (source = unique_k with k != m)
    unique:-, unique:+   x_m's unique block holds sign(y)        (source = unique_m)
    redundant:-, +       x_m's redundant block holds sign(y)     (source = redundant)
    synergy:-, +         x_m's synergy block holds sign(b_m)     (source = synergistic)

(``-`` for a 0 bit, ``+`` for a 1 bit). :func:`pid_xor_latent_pmf` returns the joint pmf
``P[l_i, l_j, y]`` of shape ``(7, 7, 2)`` and :func:`pid_xor_ground_truth` its exact BROJA PID
(bits). For a pure mix the answer is the canonical vector: ``synergistic=1`` is XOR (S = 1 bit),
``redundant=1`` is RDN (R = 1), ``unique1=1`` is UNQ (U1 = 1). For mixtures the PID is *not* the
mix-weighted sum of the pure answers in general (BROJA's optimiser may couple latent values of
different sources), which is why the pmf is solved rather than read off the weights;
:func:`mix_weighted_pid` gives the naive weighted sum for comparison.

With more than two modalities the pair's view of the synergistic source carries no information
(any ``M - 1`` modalities are independent of ``y``): ``(b_i, b_j, y)`` are three independent bits.

What this truth is the truth *of*: the features are noisy functions of the latent variables, so the
information in the continuous features is at most that of the latents (up to the rare sample whose
``|N(0, s^2)|`` draw is so small that its block cannot be told from noise). A consistent estimator
on features should approach these numbers from below as ``N`` grows and the discretisation refines;
the end-to-end check in ``tests/data/test_groundtruth.py`` states the tolerance it uses.

It lives beside the generator (``interplay.data``), not in ``interplay.pid``: the PID library does not
depend on any dataset.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import ConfigError
from ..pid import PIDResult, broja
from .synthetic import parse_mix, pid_xor_sources

__all__ = ["LATENT_STATES", "mix_weighted_pid", "pid_xor_ground_truth", "pid_xor_latent_pmf"]

#: the 7 latent values of one modality, in the order of the pmf's axes
LATENT_STATES: tuple[str, ...] = (
    "none", "unique:-", "unique:+", "redundant:-", "redundant:+", "synergy:-", "synergy:+",
)
_STATE = {name: i for i, name in enumerate(LATENT_STATES)}


def _state(block: str, bit: int) -> int:
    return _STATE[f"{block}:{'+' if bit else '-'}"]


def _check_pair(modalities: int, pair: tuple[int, int]) -> tuple[int, int]:
    if modalities < 2:
        raise ConfigError(f"pid-xor ground truth: need at least 2 modalities, got {modalities}")
    i, j = (int(p) for p in pair)
    if not (0 <= i < modalities and 0 <= j < modalities) or i == j:
        raise ConfigError(f"pid-xor ground truth: pair must name two different modalities among "
                          f"0..{modalities - 1}, got {pair}")
    return i, j


def pid_xor_latent_pmf(mix: str | Mapping[str, float], modalities: int = 2,
                       pair: tuple[int, int] = (0, 1)) -> np.ndarray:
    r"""Joint pmf ``P[l_i, l_j, y]`` (shape ``(7, 7, 2)``) of two modalities' latents and the label.

    Args:
        mix: the generator's source mix, e.g. ``"redundant=0.9,synergistic=0.1"`` or a mapping
            (normalised as ``pid_xor`` does).
        modalities: the generator's number of modalities ``M``.
        pair: 0-based indices ``(i, j)`` of the two modalities (axis 0 is ``i``).

    Returns:
        float64 array summing to 1; axes follow :data:`LATENT_STATES`.

    Per source ``s`` with weight ``w_s`` and ``y`` uniform (``P(y) = 1/2``)::

        unique_i:     P[unique:y, none, y]        += w / 2
        unique_j:     P[none, unique:y, y]        += w / 2
        unique_k:     P[none, none, y]            += w / 2         (k outside the pair)
        redundant:    P[redundant:y, redundant:y, y] += w / 2
        synergistic:  M = 2: P[synergy:b, synergy:(b xor y), y] += w / 4   (b in {0, 1})
                      M > 2: P[synergy:b, synergy:c, y]         += w / 8   (b, c in {0, 1})
    """
    i, j = _check_pair(modalities, pair)
    weights = parse_mix(mix, pid_xor_sources(modalities))
    n = len(LATENT_STATES)
    P = np.zeros((n, n, 2))
    none = _STATE["none"]
    for source, w in weights.items():
        for y in (0, 1):
            if source.startswith("unique"):
                k = int(source[len("unique"):]) - 1
                a = _state("unique", y) if k == i else none
                b = _state("unique", y) if k == j else none
                P[a, b, y] += w / 2
            elif source == "redundant":
                P[_state("redundant", y), _state("redundant", y), y] += w / 2
            elif modalities == 2:  # synergistic: b_j = y xor b_i
                for bit in (0, 1):
                    P[_state("synergy", bit), _state("synergy", bit ^ y), y] += w / 4
            else:  # synergistic with M > 2: the pair's bits are independent of y
                for bi in (0, 1):
                    for bj in (0, 1):
                        P[_state("synergy", bi), _state("synergy", bj), y] += w / 8
    return P


def pid_xor_ground_truth(mix: str | Mapping[str, float], modalities: int = 2,
                         pair: tuple[int, int] = (0, 1)) -> PIDResult:
    """Exact BROJA PID (bits) of :func:`pid_xor_latent_pmf` ``(mix, modalities, pair)``.

    Example:
        >>> r = pid_xor_ground_truth("synergistic=1")
        >>> round(r.synergy, 6), round(r.redundancy, 6)
        (1.0, 0.0)
    """
    return broja(pid_xor_latent_pmf(mix, modalities, pair))


def mix_weighted_pid(mix: str | Mapping[str, float], modalities: int = 2,
                     pair: tuple[int, int] = (0, 1)) -> dict[str, float]:
    """The naive answer ``{redundancy: w_redundant, unique1: w_unique_i, unique2: w_unique_j,
    synergy: w_synergistic (M = 2 only)}`` in bits: each pure source is worth one bit of its own atom.

    Not the BROJA PID of the mixture (see :func:`pid_xor_ground_truth`); useful as a reference point.
    """
    i, j = _check_pair(modalities, pair)
    w = parse_mix(mix, pid_xor_sources(modalities))
    return {"redundancy": w.get("redundant", 0.0), "unique1": w.get(f"unique{i + 1}", 0.0),
            "unique2": w.get(f"unique{j + 1}", 0.0),
            "synergy": w.get("synergistic", 0.0) if modalities == 2 else 0.0}
