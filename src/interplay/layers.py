"""Small building blocks shared by every floor of the package (models, objectives, PID estimators).

* :func:`mlp` — the one MLP builder;
* :func:`gaussian_kl` — the one closed-form KL divergence between diagonal Gaussians;
* :func:`gaussian_sample` — the one reparameterised sample of a diagonal Gaussian.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def mlp(sizes: Sequence[int], dropout: float = 0.0, last_activation: bool = True,
        activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """``Linear -> activation (-> Dropout)`` stack through ``sizes`` (``sizes[0]`` is the input width);
    ``last_activation=False`` leaves the last ``Linear`` bare (a head)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers.append(activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def gaussian_kl(mu: Tensor, logvar: Tensor, mu_p: Tensor | None = None, logvar_p: Tensor | None = None) -> Tensor:
    r"""Elementwise :math:`KL(N(\mu, e^{\text{logvar}}) \,\|\, N(\mu_p, e^{\text{logvar}_p}))` of diagonal
    Gaussians, same shape as ``mu`` (sum or average over the last axis yourself). Without ``mu_p`` / ``logvar_p``
    the prior is the standard normal:

    .. math:: \tfrac12 (\mu^2 + e^{\text{logvar}} - \text{logvar} - 1)

    and otherwise
    :math:`\tfrac12 (\text{logvar}_p - \text{logvar} + (e^{\text{logvar}} + (\mu - \mu_p)^2) e^{-\text{logvar}_p} - 1)`.
    """
    if mu_p is None and logvar_p is None:
        return 0.5 * (mu.square() + logvar.exp() - logvar - 1)
    if mu_p is None or logvar_p is None:
        raise ValueError("gaussian_kl: give both mu_p and logvar_p, or neither (standard normal prior)")
    return 0.5 * (logvar_p - logvar + (logvar.exp() + (mu - mu_p).square()) / logvar_p.exp() - 1)


def gaussian_sample(mu: Tensor, logvar: Tensor) -> Tensor:
    r"""A reparameterised sample of :math:`N(\mu, e^{\text{logvar}})` (diagonal), same shape as ``mu``:
    :math:`\mu + \epsilon\, e^{\text{logvar} / 2}` with :math:`\epsilon \sim N(0, I)` (differentiable in ``mu`` and
    ``logvar``)."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
