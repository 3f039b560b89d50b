"""``anomaly-xor``: synthetic two-modality anomaly detection with known anomaly types.

Each modality ``x_m`` (``dim`` features) is ``P_m u_m + e_m``: a fixed random projection ``P_m``
(``(dim, latent)``, entries ``N(0, 1/latent)``, drawn from ``projection_seed``) of a latent code ``u_m``
(``latent`` wide), plus noise ``e_m ~ N(0, noise^2)``. A *normal* sample draws one bit ``b ~ Bernoulli(1/2)`` and
one *orthant code* shared by both modalities::

    u = |N(0, strength^2 I)| * (2b - 1)      (every coordinate carries the same sign),   u_1 = u_2 = u

so each modality alone sees codes in the two opposite orthants ``+...+`` / ``-...-``, and the pair agrees.
Anomalies break this in one of three ways (``kind``):

* ``unimodal``: one modality (x1 or x2, chosen per sample) gets an *off-orthant* code (every coordinate's sign
  drawn independently, re-drawn until they are not all equal); the other keeps ``u``. Visible in that modality
  alone (and in the pair).
* ``both``: one off-orthant code in both modalities (their relation intact). Visible in either modality alone.
* ``synergistic``: ``u_2 = -u_1``: both codes are normal-looking but in opposite orthants (the XOR of the two
  modalities' bits is 1). Each modality's marginal distribution is exactly the normal one, so no detector that
  sees one modality can do better than chance (AUROC 0.5); only the joint ``(x1, x2)`` reveals it.

Splits: ``n_train`` samples (default 2000) of which a share ``val_fraction`` is validation. The training part is
*normal only* (what a one-class method may see); validation and test (``n_test``, default 2000) hold a share
``anomaly_fraction`` of anomalies. ``target``: 1 = anomaly, 0 = normal. Each sample's anomaly type is
``meta["interaction"]``, an index into ``info.interactions`` = ``("normal", "unimodal_x1", "unimodal_x2",
"both", "synergistic")``. Inputs are standardised with the (normal) training split's statistics.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ..errors import ConfigError
from .dataset import DATASETS, DataInfo, DataSplits, MultimodalDataset, validated_by
from .synthetic import check_split_sizes

#: anomaly type names; a sample's ``meta["interaction"]`` indexes this tuple
ANOMALY_TYPES: tuple[str, ...] = ("normal", "unimodal_x1", "unimodal_x2", "both", "synergistic")
ANOMALY_KINDS: tuple[str, ...] = ("unimodal", "both", "synergistic")


def check_anomaly_xor(*, n_train: int | None, n_test: int | None, val_fraction: float, kind: str,
                      anomaly_fraction: float, dim: int, latent: int, strength: float, noise: float,
                      **_: object) -> None:
    """Validate anomaly-xor's parameter values (cheap; nothing is drawn)."""
    if kind not in ANOMALY_KINDS:
        raise ConfigError(f"data.kind: expected one of {', '.join(ANOMALY_KINDS)}, got {kind!r}")
    if not 0 < anomaly_fraction < 1:
        raise ConfigError(f"data.anomaly_fraction: expected a number in (0, 1), got {anomaly_fraction}")
    if latent < 2:
        raise ConfigError(f"data.latent: expected an integer >= 2 (off-orthant codes need two coordinates), "
                          f"got {latent}")
    if dim < latent:
        raise ConfigError(f"data.dim: expected at least data.latent={latent} features, got {dim}")
    for name, value in (("strength", strength), ("noise", noise)):
        if not np.isfinite(value) or value < 0:
            raise ConfigError(f"data.{name}: expected a finite non-negative number, got {value}")
    check_split_sizes(2000 if n_train is None else n_train, 2000 if n_test is None else n_test, val_fraction)


def _orthant_codes(rng: np.random.Generator, signs: np.ndarray, latent: int, strength: float) -> np.ndarray:
    """``(n, latent)`` codes ``|N(0, strength^2)| * signs[:, None]`` (one sign per sample)."""
    return np.abs(rng.normal(0.0, strength, size=(len(signs), latent))) * signs[:, None]


def _off_orthant_codes(rng: np.random.Generator, n: int, latent: int, strength: float) -> np.ndarray:
    """``(n, latent)`` codes whose coordinate signs are independent and never all equal."""
    signs = rng.choice([-1.0, 1.0], size=(n, latent))
    same = np.abs(signs.sum(1)) == latent
    while same.any():
        signs[same] = rng.choice([-1.0, 1.0], size=(int(same.sum()), latent))
        same = np.abs(signs.sum(1)) == latent
    return np.abs(rng.normal(0.0, strength, size=(n, latent))) * signs


def draw_anomaly_xor(rng: np.random.Generator, n: int, anomalous: np.ndarray, kind: str, proj: dict[str, np.ndarray],
                     latent: int, strength: float, noise: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Draw ``n`` samples; ``anomalous`` ``(n,)`` bool marks the anomalies. Returns ``({m: (n, dim)}, (n,)
    type codes)`` (indices into :data:`ANOMALY_TYPES`)."""
    u = _orthant_codes(rng, rng.choice([-1.0, 1.0], size=n), latent, strength)
    codes = {"x1": u.copy(), "x2": u.copy()}
    types = np.zeros(n, dtype=np.int64)
    rows = np.flatnonzero(anomalous)
    if kind == "synergistic":  # the other orthant: b_1 xor b_2 = 1
        codes["x2"][rows] = -u[rows]
        types[rows] = ANOMALY_TYPES.index("synergistic")
    elif kind == "both":  # one off-orthant code, in both modalities (their relation intact)
        off = _off_orthant_codes(rng, len(rows), latent, strength)
        for m in ("x1", "x2"):
            codes[m][rows] = off
        types[rows] = ANOMALY_TYPES.index("both")
    elif kind == "unimodal":  # an off-orthant code in one modality, chosen per sample
        which = rng.integers(0, 2, size=len(rows))
        for i, m in enumerate(("x1", "x2")):
            sel = rows[which == i]
            codes[m][sel] = _off_orthant_codes(rng, len(sel), latent, strength)
            types[sel] = ANOMALY_TYPES.index(f"unimodal_{m}")
    x = {m: codes[m] @ proj[m].T + rng.normal(0.0, noise, size=(n, proj[m].shape[0])) for m in ("x1", "x2")}
    return x, types


@DATASETS.register("anomaly-xor")
@validated_by(check_anomaly_xor)
def anomaly_xor(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
                root: str | None = None, kind: Literal["unimodal", "both", "synergistic"] = "synergistic",
                anomaly_fraction: float = 0.2, dim: int = 16, latent: int = 4, strength: float = 2.0,
                noise: float = 0.5, projection_seed: int = 2468) -> DataSplits:
    """Two-modality anomaly data whose anomalies are unimodal, in both modalities, or synergistic (see the
    module docstring for the generator). ``n_train`` (default 2000; training part normal only, validation part
    with ``anomaly_fraction`` anomalies) and ``n_test`` (default 2000, ``anomaly_fraction`` anomalies).
    ``target`` is 1 for an anomaly; ``meta["interaction"]`` the anomaly type (``info.interactions``)."""
    check_anomaly_xor(n_train=n_train, n_test=n_test, val_fraction=val_fraction, kind=kind,
                      anomaly_fraction=anomaly_fraction, dim=dim, latent=latent, strength=strength, noise=noise)
    n_train = 2000 if n_train is None else n_train
    n_test = 2000 if n_test is None else n_test
    n_val = int(round(val_fraction * n_train))
    n_fit = n_train - n_val
    proj_rng = np.random.default_rng(projection_seed)
    proj = {m: proj_rng.normal(0.0, 1.0 / np.sqrt(latent), size=(dim, latent)) for m in ("x1", "x2")}
    rng = np.random.default_rng(seed)

    def split(n: int, fraction: float, name: str) -> MultimodalDataset:
        anomalous = np.zeros(n, dtype=bool)
        anomalous[rng.permutation(n)[:int(round(fraction * n))]] = True
        x, types = draw_anomaly_xor(rng, n, anomalous, kind, proj, latent, strength, noise)
        return MultimodalDataset({m: torch.as_tensor(v, dtype=torch.float32) for m, v in x.items()},
                                 torch.as_tensor(anomalous.astype(np.int64)),
                                 {"interaction": torch.as_tensor(types)}, name=f"anomaly-xor/{name}")

    train = split(n_fit, 0.0, "train")
    val = split(n_val, anomaly_fraction, "val")
    test = split(n_test, anomaly_fraction, "test")
    info = DataInfo(name="anomaly-xor", modalities={"x1": (dim,), "x2": (dim,)}, num_classes=2,
                    interactions=ANOMALY_TYPES, class_names=["normal", "anomaly"],
                    extra={"kind": kind, "anomaly_fraction": anomaly_fraction, "anomaly": True})
    return DataSplits(train, val, test, info).standardize()


__all__ = ["ANOMALY_KINDS", "ANOMALY_TYPES", "anomaly_xor", "check_anomaly_xor", "draw_anomaly_xor"]
