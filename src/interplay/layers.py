"""Small building blocks shared by every floor of the package (models, objectives, PID estimators).

* :func:`mlp` — the one MLP builder;
* :func:`gaussian_kl` — the one closed-form KL divergence between diagonal Gaussians;
* :func:`gaussian_sample` — the one reparameterised sample of a diagonal Gaussian;
* :class:`RunningStats` — the one exponential-moving-average mean and variance per feature (noise that matches
  a modality's statistics: SynIB's Gaussian fill, token-level noise withholding).
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


class RunningStats(nn.Module):
    """Per-feature mean and variance of ``dim`` features, an exponential moving average with ``momentum`` of the
    old value (the first update sets them). Updates never wait for the device (no host synchronisation).

    ``update(x, weight=None)``: ``x`` ``(N, dim)`` observations, optional ``weight`` ``(N,)`` (e.g. a mask of the
    valid rows; weights sum to the count). ``sample(like)``: noise of ``like``'s shape ``(..., dim)`` or
    ``(B, *shape)`` with ``prod(shape) == dim``, drawn ``mean + sqrt(var) * eps``.
    """

    mean: Tensor  # (dim,)
    var: Tensor  # (dim,)
    seen: Tensor  # () bool: updated at least once

    def __init__(self, dim: int, momentum: float) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("seen", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def update(self, x: Tensor, weight: Tensor | None = None) -> None:
        x = x.detach().float()
        w = torch.ones(x.shape[0], device=x.device) if weight is None else weight.detach().float()
        count = w.sum().clamp_min(1.0)
        mean = (x * w[:, None]).sum(0) / count
        var = ((x - mean) ** 2 * w[:, None]).sum(0) / count  # population variance (0 for a single row)
        old = torch.where(self.seen, torch.tensor(self.momentum, device=x.device), torch.zeros((), device=x.device))
        self.mean.copy_(old * self.mean + (1 - old) * mean)
        self.var.copy_(old * self.var + (1 - old) * var)
        self.seen.fill_(True)

    def sample(self, like: Tensor) -> Tensor:
        eps = torch.randn(like.shape, device=like.device, dtype=torch.float32).view(-1, self.mean.numel())
        return (self.mean + self.var.clamp_min(0).sqrt() * eps).view_as(like).to(like.dtype)
