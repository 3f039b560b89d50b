"""SynIB: synergistic information bottleneck (Kontras et al., arXiv 2606.09853).

Predict well from all modalities and be *unconfident* whenever one modality's information is withheld, so that
confidence can only come from cross-modal (synergistic) evidence. See ``docs/methods/synib.md``.

The penalty is composed from three strategies, each built from SynIB's typed hyperparameters:

* a **mask** (:class:`MaskStrategy`: ``whole``, ``random``, ``learned``, ``oracle``) says which features of which
  modality are withheld, per row;
* a **fill** (:class:`FillStrategy`: ``shuffle``, ``gaussian``, ``zero``) says what replaces them;
* a **divergence** (:class:`DivergenceStrategy`: ``prior_kl``, ``uniform_kl``, ``gaussian``, ``unimodal_anchor``,
  optionally wrapped in :class:`Hinge`) says how far the masked prediction is from unconfident.

Strategies with parameters or buffers (the gaussian fill's running statistics, the oracle's block indices, the
gaussian divergence's log-variance head) are ``nn.Module`` s; the others are plain objects.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Batch, DataSplits
from ..errors import ConfigError
from ..layers import RunningStats, gaussian_kl
from ..models import Absent, MultimodalModel, Replacement, Shuffled, TokenModel
from .base import METHODS, Objective, ObjectiveOutput, TrainState, categorical_kl, entropy, mean_of_probabilities

Mask = Literal["whole", "random", "learned", "oracle"]
Fill = Literal["shuffle", "gaussian", "zero", "model"]
Divergence = Literal["prior_kl", "uniform_kl", "gaussian", "unimodal_anchor"]


def cyclic_derangement(n: int, device: torch.device | str = "cpu") -> Tensor:
    """A random permutation ``idx`` of ``range(n)`` with no fixed point (for ``n > 1``): row ``i`` of
    ``x[idx]`` comes from another row. Built by cycling a random ordering one step."""
    order = torch.randperm(n, device=device)
    idx = torch.empty_like(order)
    idx[order] = order.roll(-1)
    return idx


# ---------------------------------------------------------------------- fills: what replaces withheld features
class FillStrategy:
    """What replaces withheld values of modality ``i``: :meth:`values` gives, row by row, a replacement for
    every value of ``x`` ``(B, ...)`` (a mask then picks which ones are used)."""

    def setup(self, widths: Sequence[int]) -> None:
        """Size any state: ``widths[i]``, the number of values per row of modality ``i`` that may be replaced."""

    def observe(self, i: int, x: Tensor) -> None:
        """See a training batch ``x`` ``(B, ...)`` of modality ``i`` (running statistics)."""

    def values(self, i: int, x: Tensor) -> Tensor:
        """``(B, ...)`` replacement values, the shape of ``x``."""
        raise NotImplementedError

    def replace_all(self, i: int, x: Tensor) -> Replacement:
        """The replacement of all of ``x``: :meth:`values`, or a cheaper description of them."""
        return self.values(i, x)


class ShuffleFill(FillStrategy):
    """The same values of another row of the batch, ``x[pi]`` with ``pi`` a random cyclic derangement (no row
    keeps its own): a sample from the batch marginal, not detached."""

    def values(self, i: int, x: Tensor) -> Tensor:
        return x[cyclic_derangement(x.shape[0], x.device)]

    def replace_all(self, i: int, x: Tensor) -> Replacement:
        """:class:`~interplay.models.Shuffled` rows, so the fusion can reuse the clean pass's work."""
        return Shuffled(cyclic_derangement(x.shape[0], x.device))


class ZeroFill(FillStrategy):
    """Zeros (the fusion's "modality absent")."""

    def values(self, i: int, x: Tensor) -> Tensor:
        return torch.zeros_like(x)


class GaussianFill(nn.Module, FillStrategy):
    """``N(mean, var)`` per value from running statistics of the training batches (EMA momentum ``ema``;
    buffers ``stats.<i>``, saved with the objective)."""

    def __init__(self, ema: float) -> None:
        super().__init__()
        self.ema = ema
        self.stats = nn.ModuleDict()

    def setup(self, widths: Sequence[int]) -> None:
        self.stats = nn.ModuleDict({str(i): RunningStats(w, self.ema) for i, w in enumerate(widths)})

    def running(self, i: int) -> RunningStats:
        """Modality ``i``'s statistics."""
        return typing.cast(RunningStats, self.stats[str(i)])

    def observe(self, i: int, x: Tensor) -> None:
        self.running(i).update(x.flatten(1))

    def values(self, i: int, x: Tensor) -> Tensor:
        return self.running(i).sample(x)


class ModelFill(FillStrategy):
    """The model's own withholding (token-level models, :class:`~interplay.models.TokenModel`): whole masking
    sends :class:`~interplay.models.Absent`, so the model applies its ``model.token_mask`` strategy (EMA-matched
    noise, a learned mask embedding, or dropping the tokens from attention); per-token masks take their
    replacement values from the same strategy (``noise`` / ``embedding`` only)."""

    def __init__(self) -> None:
        self.model: TokenModel | None = None
        self.modalities: list[str] = []

    def bind(self, model: MultimodalModel, mask: str) -> None:
        if not isinstance(model, TokenModel):
            raise ConfigError("method.fill: 'model' needs a token-level model (set model.backbone, e.g. tiny-vlm)")
        if mask != "whole" and model.fusion.withhold == "drop":
            raise ConfigError(f"method.fill: 'model' with model.token_mask=drop supports mask 'whole' only, got "
                              f"{mask!r} (per-token masks need replacement values: token_mask noise or embedding)")
        self.model, self.modalities = model, list(model.modalities)

    def values(self, i: int, x: Tensor) -> Tensor:
        assert self.model is not None, "ModelFill.bind(model) first"
        m = self.modalities[i]
        return self.model.fusion.withheld_values(m, x)

    def replace_all(self, i: int, x: Tensor) -> Replacement:
        return typing.cast(Replacement, Absent())


def make_fill(fill: Fill, ema: float) -> FillStrategy:
    if fill == "model":
        return ModelFill()
    if fill == "shuffle":
        return ShuffleFill()
    if fill == "zero":
        return ZeroFill()
    return GaussianFill(ema)


# ---------------------------------------------------------------------- masks: which features are withheld
class MaskStep(NamedTuple):
    """What a mask sees in one training step (``B`` rows)."""

    model: MultimodalModel
    feats: dict[str, Tensor]  # clean encoder outputs {m: (B, d_m)}
    masked: dict[str, Tensor]  # oracle: encoder outputs of the masked inputs {m: (B, d_m)}; otherwise empty
    target: Tensor  # (B,)


class Withheld(NamedTuple):
    """Modality ``m``'s masked features (a new ``(B, d_m)`` tensor or shuffled rows) and, for the learned mask,
    the gates ``(B, d_m)`` (1: kept)."""

    replacement: Replacement
    gates: Tensor | None = None


class MaskStrategy:
    """Which values of modality ``m`` are withheld, per row. :meth:`encode` runs the encoders once per step;
    :meth:`withhold` gives modality ``m``'s masked features, the withheld values taken from the fill."""

    #: where the fill acts: on encoder outputs, or (oracle) on the inputs
    space: ClassVar[Literal["features", "inputs"]] = "features"
    #: the mask reads the model's unimodal heads (which must then be trained)
    needs_heads: ClassVar[bool] = False

    def __init__(self) -> None:
        self.modalities: list[str] = []

    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        self.modalities = list(model.modalities)

    def fill_widths(self, model: MultimodalModel, data: DataSplits) -> list[int]:
        """Values per row the fill may replace, per modality: the encoder output widths."""
        dims = model.feature_dims()
        return [dims[m] for m in self.modalities]

    def encode(self, model: MultimodalModel, inputs: Mapping[str, Tensor], fill: FillStrategy, penalise: bool,
               observe: bool) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Clean features ``{m: (B, d_m)}`` (the fill observes them when ``observe``), and no masked ones."""
        feats = model.encode(inputs)
        if observe:
            for i, m in enumerate(self.modalities):
                fill.observe(i, feats[m])
        return feats, {}

    def withhold(self, i: int, m: str, step: MaskStep, fill: FillStrategy) -> Withheld:
        raise NotImplementedError


class WholeMask(MaskStrategy):
    """All of ``z_m``: ``z~_m = fill(z_m)``."""

    def withhold(self, i: int, m: str, step: MaskStep, fill: FillStrategy) -> Withheld:
        return Withheld(fill.replace_all(i, step.feats[m]))


class RandomMask(MaskStrategy):
    """Each value independently with probability ``p``: ``z~_m = z_m + r * (fill(z_m) - z_m)``,
    ``r ~ Bernoulli(p)`` per value (also the ``w_aug`` augmentation)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def replace(self, i: int, z: Tensor, fill: FillStrategy) -> Tensor:
        """``z`` ``(B, ...)`` with each value replaced by the fill's with probability ``p``; token features
        ``(B, L, D)`` (token-level models) per token: all ``D`` values of a token together."""
        replace = (torch.rand_like(z if z.dim() < 3 else z[..., :1]) < self.p).to(z.dtype)
        return torch.lerp(z, fill.values(i, z), replace)  # exact for weights 0/1; no `where` in backward

    def withhold(self, i: int, m: str, step: MaskStep, fill: FillStrategy) -> Withheld:
        return Withheld(self.replace(i, step.feats[m], fill))


class LearnedMask(MaskStrategy):
    """Per-example gates ``g = sigmoid(l / tau)`` ``(B, d_m)``, ``z~_m = g z_m + (1 - g) fill(z_m)``, from
    ``steps`` Adam steps (lr ``mask_lr``, ``l`` starting at 1; the model frozen) on
    ``-CE(h_m(z~_m), y) + sparsity * mean(1 - g)``: destroy what modality ``m``'s unimodal head ``h_m`` needs
    while keeping as much as possible. The gates are then fixed; ``z~_m`` is differentiable in ``z_m`` and the
    fill."""

    needs_heads = True

    def __init__(self, steps: int, lr: float, tau: float, sparsity: float) -> None:
        super().__init__()
        self.steps, self.lr, self.tau, self.sparsity = steps, lr, tau, sparsity

    def withhold(self, i: int, m: str, step: MaskStep, fill: FillStrategy) -> Withheld:
        head = step.model.unimodal_heads[m]  # type: ignore[index]
        z = step.feats[m]
        fill_values = fill.values(i, z)
        zd, fd = z.detach(), fill_values.detach()
        # one gate per feature; per token for token features (B, L, D) of token-level models
        logit = torch.ones_like(zd if zd.dim() < 3 else zd[..., :1], requires_grad=True)
        m1, m2 = torch.zeros_like(logit), torch.zeros_like(logit)  # Adam moments (betas 0.9, 0.999)
        with torch.enable_grad():
            for t in range(1, self.steps + 1):
                g = torch.sigmoid(logit / self.tau)
                inner = -F.cross_entropy(head(g * zd + (1 - g) * fd), step.target) + self.sparsity * (1 - g).mean()
                (grad,) = torch.autograd.grad(inner, [logit])  # the model's parameters get no gradient
                with torch.no_grad():
                    m1.lerp_(grad, 0.1)
                    m2.lerp_(grad * grad, 0.001)
                    update = (m1 / (1 - 0.9**t)) / ((m2 / (1 - 0.999**t)).sqrt() + 1e-8)
                    logit -= self.lr * update
        g = torch.sigmoid(logit.detach() / self.tau)
        return Withheld(torch.lerp(fill_values, z, g), g)  # g * z + (1 - g) * fill


class OracleMask(nn.Module, MaskStrategy):
    """The input's synergy block (``info.block_map[m]["synergy"]``, buffers ``synergy_<i>``), replaced by the fill
    in input space on every row; the masked inputs are encoded in the same encoder call as the clean ones."""

    space: ClassVar[Literal["features", "inputs"]] = "inputs"

    def __init__(self) -> None:
        nn.Module.__init__(self)
        MaskStrategy.__init__(self)

    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        MaskStrategy.setup(self, model, data)
        info = data.info
        bm = info.block_map
        if not bm or any("synergy" not in bm.get(m, {}) for m in self.modalities):
            raise ConfigError(f"method.mask: 'oracle' needs a dataset with a synergy block map (e.g. pid-xor); "
                              f"{info.name!r} has none")
        for i, m in enumerate(self.modalities):
            self.register_buffer(f"synergy_{i}", torch.as_tensor(bm[m]["synergy"], dtype=torch.long),
                                 persistent=False)

    def fill_widths(self, model: MultimodalModel, data: DataSplits) -> list[int]:
        """Values per row the fill may replace: the flattened input sizes."""
        return [math.prod(data.info.modalities[m]) for m in self.modalities]

    def masked_inputs(self, inputs: Mapping[str, Tensor], fill: FillStrategy) -> dict[str, Tensor]:
        """Each modality's input ``(B, *shape_m)`` with its synergy block replaced by the fill (every row)."""
        out = {}
        for i, m in enumerate(self.modalities):
            x = inputs[m]
            flat = x.flatten(1)
            idx = getattr(self, f"synergy_{i}")
            values = fill.values(i, flat)
            masked = flat.clone()
            masked[:, idx] = values[:, idx]
            out[m] = masked.view_as(x)
        return out

    def encode(self, model: MultimodalModel, inputs: Mapping[str, Tensor], fill: FillStrategy, penalise: bool,
               observe: bool) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Clean and masked features, ``2B`` rows through each encoder in one call (the fill observes the
        inputs); without a penalty only the clean features."""
        if not penalise:
            return model.encode(inputs), {}
        if observe:
            for i, m in enumerate(self.modalities):
                fill.observe(i, inputs[m])
        masked = self.masked_inputs(inputs, fill)
        n = next(iter(inputs.values())).shape[0]
        both = model.encode({m: torch.cat([inputs[m], masked[m]]) for m in self.modalities})
        return {m: v[:n] for m, v in both.items()}, {m: v[n:] for m, v in both.items()}

    def withhold(self, i: int, m: str, step: MaskStep, fill: FillStrategy) -> Withheld:
        return Withheld(step.masked[m])


def make_mask(mask: Mask, p: float, steps: int, mask_lr: float, tau: float, sparsity: float) -> MaskStrategy:
    if mask == "whole":
        return WholeMask()
    if mask == "random":
        return RandomMask(p)
    if mask == "learned":
        return LearnedMask(steps, mask_lr, tau, sparsity)
    return OracleMask()


# ---------------------------------------------------------------------- divergences: how confident is masked
class MaskedRows(NamedTuple):
    """The ``N`` rows of the masked passes, scored by a divergence."""

    logits: Tensor  # (N, C) the classifier's output on the masked features
    log_prior: Tensor  # (C,) log of the empirical training label distribution
    reference: Tensor | None = None  # (N, C) detached log-probabilities of the unimodal prediction without m
    logvar: Tensor | None = None  # (N, C) gaussian: the learned log-variance of the logits


class DivergenceStrategy:
    """``D(masked prediction)`` per row, ``(N,)`` nats: zero when the masked prediction is as unconfident as the
    divergence asks (its target), positive otherwise."""

    #: ``D`` compares with the unimodal prediction of the complementary modalities (``MaskedRows.reference``)
    needs_reference: ClassVar[bool] = False

    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        """Build any module sized from the model and data."""

    def log_variance(self, fused: Tensor) -> Tensor | None:
        """``(N, C)`` log-variances of the logits from the fused representation ``(N, d)`` (gaussian only)."""
        return None

    def per_sample(self, rows: MaskedRows) -> Tensor:
        raise NotImplementedError


class KLToBase(DivergenceStrategy):
    """``KL(p || base)`` with ``p = softmax(logits)``, for a fixed base distribution."""

    def kl(self, logp: Tensor, log_prior: Tensor) -> Tensor:
        """``(N,)`` ``KL(p || base)`` from log-probabilities ``(N, C)``."""
        raise NotImplementedError

    def per_sample(self, rows: MaskedRows) -> Tensor:
        return self.kl(F.log_softmax(rows.logits, -1), rows.log_prior)


class PriorKL(KLToBase):
    """``prior_kl``: ``KL(p || p_y)``, ``p_y`` the training label distribution; 0 at ``p = p_y``."""

    def kl(self, logp: Tensor, log_prior: Tensor) -> Tensor:
        return categorical_kl(logp, log_prior.to(logp.dtype))


class UniformKL(KLToBase):
    """``uniform_kl``: ``KL(p || uniform) = log C - H(p)``; 0 at the uniform distribution."""

    def kl(self, logp: Tensor, log_prior: Tensor) -> Tensor:
        return math.log(logp.shape[-1]) - entropy(logp)


class GaussianKL(nn.Module, DivergenceStrategy):
    """``gaussian`` (the authors' form): ``KL(N(logits, diag e^s) || N(0, I))
    = 1/2 sum_c (logit_c^2 + e^{s_c} - s_c - 1)`` with ``s = logvar(fused)``, a zero-initialised linear head
    (one value per class); 0 at ``logits = 0, s = 0``."""

    def __init__(self) -> None:
        super().__init__()
        self.logvar: nn.Linear | None = None

    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        width = int(getattr(model.fusion, "out_dim", None) or typing.cast(int, model.head.in_features))
        self.logvar = nn.Linear(width, data.info.num_classes)
        nn.init.zeros_(self.logvar.weight)
        nn.init.zeros_(self.logvar.bias)

    def log_variance(self, fused: Tensor) -> Tensor:
        assert self.logvar is not None, "GaussianKL.setup() builds the log-variance head"
        return self.logvar(fused)

    def per_sample(self, rows: MaskedRows) -> Tensor:
        assert rows.logvar is not None
        return gaussian_kl(rows.logits, rows.logvar).sum(-1)


class UnimodalAnchor(DivergenceStrategy):
    """``unimodal_anchor`` (SynIB-U): ``KL(p_uni(-m) || p)``, the complementary modalities' unimodal prediction
    as anchor; 0 at ``p = p_uni(-m)``."""

    needs_reference = True

    def per_sample(self, rows: MaskedRows) -> Tensor:
        assert rows.reference is not None
        return categorical_kl(rows.reference, F.log_softmax(rows.logits, -1))


class Hinge(DivergenceStrategy):
    """``hinge``: ``max(0, D(p) - D(p_uni(-m)))`` with ``D`` a :class:`KLToBase` and the reference detached:
    masked confidence up to the remaining modalities' unimodal confidence is free; 0 there."""

    needs_reference = True

    def __init__(self, base: KLToBase) -> None:
        self.base = base

    def per_sample(self, rows: MaskedRows) -> Tensor:
        assert rows.reference is not None
        d = self.base.kl(F.log_softmax(rows.logits, -1), rows.log_prior)
        return (d - self.base.kl(rows.reference, rows.log_prior).detach()).clamp_min(0)


def make_divergence(divergence: Divergence, hinge: bool) -> DivergenceStrategy:
    if divergence == "gaussian":
        return GaussianKL()
    if divergence == "unimodal_anchor":
        return UnimodalAnchor()
    base = PriorKL() if divergence == "prior_kl" else UniformKL()
    return Hinge(base) if hinge else base


#: divergences that depend only on the masked prediction itself (no label, no per-modality reference): with two
#: modalities, whole masking and the shuffle fill they let one masked pass serve both modalities
_SYMMETRIC: tuple[type[DivergenceStrategy], ...] = (PriorKL, UniformKL, GaussianKL)


# ---------------------------------------------------------------------- the objective
class _StepRecord(NamedTuple):
    """One training step's masked-pass outputs, kept for the batched per-epoch reduction."""

    layout: tuple  # (n, ((modality, pass, plain target?, every row?), ...), gate names): one layout reduces together
    logits: Tensor  # ((1 + K) n, C) detached: the clean pass, then the K masked passes
    target: Tensor  # (n,)
    indices: list[Tensor | None]  # per masked entry: its rows are scored against target[index] (None: target)
    rows: list[tuple[Tensor, int] | None]  # per masked entry: its rows (n,) bool and their count (None: all n)
    pen: Tensor  # (K, n) per-row penalty of each masked pass
    gate_means: Tensor | None  # (G,) learned masks' mean gate per modality


class MaskedEntry(NamedTuple):
    """The rows of masked pass ``pass_`` (1-based) that are modality ``modality`` masked (``rows`` ``(n,)`` bool
    and their count; None: every row), scored against ``target[target_index]`` (None: ``target``)."""

    modality: str
    pass_: int
    target_index: Tensor | None = None
    rows: tuple[Tensor, int] | None = None


class MaskedPasses(NamedTuple):
    """The masked variants of one step: ``K`` fusion variants, which rows mean which modality masked, gates;
    ``which`` ``(n,)``: with ``random_modality``, the index of the modality each row of the one pass withholds."""

    variants: list[dict[str, Replacement]]
    entries: list[MaskedEntry]
    gates: dict[str, Tensor]
    which: Tensor | None = None


def balanced_assignment(n: int, k: int) -> Tensor:
    """``(n,)`` long on the CPU: row ``b`` gets ``(pi(b) + o) mod k`` with ``pi`` a random permutation of
    ``range(n)`` and ``o`` uniform on ``range(k)``. Every value occurs ``floor(n / k)`` or ``ceil(n / k)`` times,
    and each row's value is exactly uniform: ``P(a_b = j) = sum_o (1/k) P(pi(b) = j - o (mod k))
    = (1/k) sum_r P(pi(b) = r (mod k)) = 1/k``, as ``j - o`` runs over every residue ``r`` once (without the
    offset, ``k`` not dividing ``n`` would favour the small residues)."""
    offset = int(torch.randint(k, ()))
    return (torch.randperm(n) + offset) % k


def on_rows(replacement: Replacement, z: Tensor, rows: Tensor) -> Replacement:
    """``replacement`` of the features ``z`` ``(B, ...)`` on the rows ``rows`` ``(B,)`` bool only; the other rows
    keep their clean ``z``. A :class:`~interplay.models.Shuffled` stays one (the other rows index themselves);
    an :class:`~interplay.models.Absent` names its rows."""
    if isinstance(replacement, Absent):
        return typing.cast(Replacement, Absent(rows if replacement.rows is None else rows & replacement.rows))
    if isinstance(replacement, Shuffled):
        own = torch.arange(z.shape[0], device=z.device)
        return Shuffled(torch.where(rows, replacement.index, own))
    return torch.where(rows.view(-1, *([1] * (z.dim() - 1))), replacement, z)


@METHODS.register("synib")
class SynIB(Objective):
    """``L = CE(f(z), y) + w_uni sum_m CE(h_m(z_m), y) + w_aug sum_m CE(f(z with R(z_m)), y)
    + lam(epoch) sum_m mean_batch D(softmax(f(z with M(z_m))))``.

    ``M`` is the mask strategy with its fill, ``D`` the divergence strategy, ``R`` random masking with
    probability ``p`` (see the module docstring). Encoders run once; masking acts on encoder outputs ``z_m``
    (``oracle``: on the input's synergy block, re-encoded in the same encoder call). The clean pass and all
    masked / augmented passes go through the fusion head in one call, ``model.fuse_variants`` (a shuffled
    modality is passed as :class:`Shuffled`, so the concat fusion reuses its first-layer product).

    Args:
        lam: weight of the SynIB penalty (tune on validation; 1-10 on pid-xor).
        mask: ``whole`` (all of ``z_m``), ``random`` (each feature with probability ``p``), ``learned``
            (per-example gates from ``steps`` inner Adam steps against the unimodal head), ``oracle``
            (the input's synergy block, datasets with a block map only).
        p: feature-replacement probability of ``random`` masking and of the ``w_aug`` augmentation.
        fill: what replaces withheld features: ``shuffle`` (the same features of another sample of the batch),
            ``gaussian`` (``N(mean, var)`` from running per-feature statistics, EMA ``ema``), ``zero``.
        divergence: ``prior_kl`` (``KL(p_masked || empirical train label prior)``), ``uniform_kl``,
            ``gaussian`` (the authors' Gaussian on logits with a learned log-variance head,
            ``KL(N(logits, diag e^s) || N(0, I))``, about ``||logits||^2 / 2``; for reproduction),
            ``unimodal_anchor`` (SynIB-U: ``KL(p_uni(-m) || p_masked)``, the complementary modalities' unimodal
            prediction as anchor).
        hinge: penalise only ``max(0, D(p_masked) - D(p_uni(-m)))`` per sample (``prior_kl``/``uniform_kl``).
        w_uni: weight of unimodal-head CE on the shared encoders (0: heads that a reference needs are trained
            as probes on detached features, leaving the encoders' objective unchanged).
        w_aug: weight of the random-mask augmentation CE.
        warmup_epochs: linear warm-up of ``lam`` over the first epochs (0: none).
        off_epoch: 0-based epoch from which ``lam`` is 0 (None: never).
        steps, mask_lr, tau, sparsity: ``learned`` masking: inner Adam steps, their learning rate, gate
            temperature, weight of ``mean(1 - g)``.
        ema: momentum of the ``gaussian`` fill's running statistics.
        random_modality: one masked pass instead of ``M``: row ``b`` withholds one modality ``m_b`` (a balanced
            random assignment, :func:`balanced_assignment`: ``P(m_b = m) = 1/M`` for every row and modality), and
            the penalty is ``M * mean_b D_b(m_b)``. Unbiased for the penalty ``P = sum_m mean_b D_b(m)`` and its
            gradient: ``E[M/B sum_b D_b(m_b)] = M/B sum_b sum_m P(m_b = m) D_b(m) = sum_m 1/B sum_b D_b(m) = P``
            (the draw does not depend on the parameters, so the same holds for the gradient; with a random fill,
            conditionally on the fill's draws). Costs ``2B`` rows through the fusion instead of ``(1 + M) B``;
            the price is variance (each row sees one modality masked per step). Where the default already
            shares one pass between two modalities (whole mask, shuffle fill, a target-free divergence), that
            exact pass is used.
    """

    description = "SynIB: fused CE + lambda * divergence of predictions with one modality masked (Kontras et al.)"
    tasks = ("classification",)

    def __init__(self, lam: float = 1.0, mask: Mask = "whole", p: float = 0.5, fill: Fill = "shuffle",
                 divergence: Divergence = "prior_kl", hinge: bool = False, w_uni: float = 0.0, w_aug: float = 0.0,
                 warmup_epochs: int = 0, off_epoch: int | None = None, steps: int = 20, mask_lr: float = 0.1,
                 tau: float = 1.0, sparsity: float = 1.0, ema: float = 0.99, random_modality: bool = False) -> None:
        super().__init__()
        for name, value, options in (("mask", mask, Mask), ("fill", fill, Fill),
                                     ("divergence", divergence, Divergence)):
            allowed = typing.get_args(options)
            if value not in allowed:
                raise ConfigError(f"method.{name}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
        for name, number, ok, what in (
                ("lam", lam, lam >= 0, "a non-negative number"),
                ("p", p, 0 < p <= 1, "a probability in (0, 1]"),
                ("w_uni", w_uni, w_uni >= 0, "a non-negative number"),
                ("w_aug", w_aug, w_aug >= 0, "a non-negative number"),
                ("warmup_epochs", warmup_epochs, warmup_epochs >= 0, "a non-negative integer"),
                ("off_epoch", off_epoch, off_epoch is None or off_epoch >= 0, "null or a non-negative integer"),
                ("steps", steps, steps >= 1, "a positive integer"),
                ("mask_lr", mask_lr, mask_lr > 0, "a positive number"),
                ("tau", tau, tau > 0, "a positive number"),
                ("sparsity", sparsity, sparsity >= 0, "a non-negative number"),
                ("ema", ema, 0 <= ema < 1, "a number in [0, 1)")):
            if not ok:
                raise ConfigError(f"method.{name}: expected {what}, got {number!r}")
        if not isinstance(random_modality, bool):
            raise ConfigError(f"method.random_modality: expected true or false, got {random_modality!r}")
        if hinge and divergence not in ("prior_kl", "uniform_kl"):
            raise ConfigError(f"method.hinge: the hinge needs divergence 'prior_kl' or 'uniform_kl', "
                              f"got {divergence!r}")
        self.lam, self.mask, self.p, self.fill, self.divergence, self.hinge = lam, mask, p, fill, divergence, hinge
        self.w_uni, self.w_aug, self.warmup_epochs, self.off_epoch = w_uni, w_aug, warmup_epochs, off_epoch
        self.steps, self.mask_lr, self.tau, self.sparsity, self.ema = steps, mask_lr, tau, sparsity, ema
        self.random_modality = random_modality
        # the strategies (nn.Modules among them are registered: their state is the objective's)
        self.masker = make_mask(mask, p, steps, mask_lr, tau, sparsity)
        self.filler = make_fill(fill, ema)
        self.divergence_fn = make_divergence(divergence, hinge)
        self.augmenter = RandomMask(p)  # w_aug: random masking of the features
        #: the augmentation's own feature statistics where the fill's live in input space (oracle + gaussian)
        self.aug_filler: GaussianFill | None = None
        #: the penalty compares with the unimodal prediction of the other modalities (anchor, hinge)
        self.uses_reference = self.divergence_fn.needs_reference
        #: unimodal heads must be trained: for the reference, the learned mask, or the w_uni term
        self.needs_heads = self.uses_reference or self.masker.needs_heads or w_uni > 0
        self.trains_unimodal_heads = self.needs_heads
        self.register_buffer("log_prior", torch.zeros(0))
        self.modalities: list[str] = []
        self._records: list[_StepRecord] = []  # the epoch's steps not yet reduced

    @property
    def stats(self) -> nn.ModuleDict | None:
        """The ``gaussian`` fill's running statistics per modality index (``"0"``, ``"1"``, ...); else None."""
        return self.filler.stats if isinstance(self.filler, GaussianFill) else None

    @property
    def logvar(self) -> nn.Linear | None:
        """The ``gaussian`` divergence's log-variance head; else None."""
        return self.divergence_fn.logvar if isinstance(self.divergence_fn, GaussianKL) else None

    # ------------------------------------------------------------------ lifecycle
    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        super().setup(model, data)
        info = data.info
        self.modalities = list(model.modalities)
        self.masker.setup(model, data)
        self.augmenter.setup(model, data)
        counts = torch.bincount(data.train.target.long().cpu(), minlength=info.num_classes).double()
        self.log_prior = (counts.clamp_min(1) / counts.clamp_min(1).sum()).log().float()
        self.filler.setup(self.masker.fill_widths(model, data))
        if isinstance(self.filler, ModelFill):
            self.filler.bind(model, self.mask)
        if self.w_aug > 0 and self.masker.space == "inputs" and isinstance(self.filler, GaussianFill):
            self.aug_filler = GaussianFill(self.ema)
            self.aug_filler.setup(self.augmenter.fill_widths(model, data))
        self.divergence_fn.setup(model, data)

    def lam_at(self, epoch: int) -> float:
        """Effective ``lam`` at 0-based ``epoch``: linear warm-up, then constant, 0 from ``off_epoch``."""
        if self.off_epoch is not None and epoch >= self.off_epoch:
            return 0.0
        if self.warmup_epochs > 0:
            return self.lam * min(1.0, (epoch + 1) / self.warmup_epochs)
        return self.lam

    # ------------------------------------------------------------------ the strategies, by name
    def _fill_for(self, i: int, x: Tensor) -> Tensor:
        """The fill's replacement values for ``x`` (``(B, ...)``, modality index ``i``), row by row."""
        return self.filler.values(i, x)

    def _random_mask(self, i: int, z: Tensor) -> Tensor:
        """``z`` with each value replaced by the fill's with probability ``p`` (the ``w_aug`` augmentation)."""
        return self.augmenter.replace(i, z, self.filler if self.aug_filler is None else self.aug_filler)

    def _oracle_inputs(self, batch: Batch) -> dict[str, Tensor]:
        """``oracle``: each modality's input with its synergy block replaced by the fill (every sample)."""
        assert isinstance(self.masker, OracleMask)
        return self.masker.masked_inputs(batch.inputs, self.filler)

    def _divergence(self, logits: Tensor, ref_logp: Tensor | None, logvar: Tensor | None) -> Tensor:
        """Per-sample ``D`` ``(N,)`` of the masked prediction ``logits`` ``(N, C)``; ``ref_logp``: ``(N, C)``
        reference log-probabilities (anchor, hinge); ``logvar``: ``(N, C)`` (gaussian)."""
        return self.divergence_fn.per_sample(MaskedRows(logits, self.log_prior, ref_logp, logvar))

    def _reference(self, uni: Mapping[str, Tensor], m: str) -> Tensor:
        """Log-probabilities of the unimodal prediction of every modality but ``m`` (detached)."""
        others = {k: v.detach() for k, v in uni.items() if k != m}
        if len(others) == 1:
            return F.log_softmax(next(iter(others.values())), -1)
        return mean_of_probabilities(others)

    def _shares_one_pass(self) -> bool:
        """Two modalities, whole masking, shuffle fill and a target-free divergence: one pass
        ``f(z_1[pi], z_2)`` is "x1 masked" for sample ``i`` and "x2 masked" for sample ``pi(i)``, so counting it
        twice equals two passes with coupled shuffles (``pi``, ``pi^-1``): the same loss and gradients."""
        return (len(self.modalities) == 2 and isinstance(self.masker, WholeMask)
                and isinstance(self.filler, ShuffleFill) and isinstance(self.divergence_fn, _SYMMETRIC))

    def _masked_passes(self, step: MaskStep) -> MaskedPasses:
        """One masked variant per modality (or one shared by both, :meth:`_shares_one_pass`; or, with
        ``random_modality``, one in which each row withholds its own modality)."""
        mods = self.modalities
        if self._shares_one_pass():
            idx = cyclic_derangement(step.target.shape[0], step.target.device)
            return MaskedPasses([{mods[0]: Shuffled(idx)}], [MaskedEntry(mods[0], 1), MaskedEntry(mods[1], 1, idx)],
                                {})
        if self.random_modality:
            return self._one_random_pass(step)
        passes = MaskedPasses([], [], {})
        for i, m in enumerate(mods):
            withheld = self.masker.withhold(i, m, step, self.filler)
            passes.variants.append({m: withheld.replacement})
            passes.entries.append(MaskedEntry(m, len(passes.variants)))
            if withheld.gates is not None:
                passes.gates[m] = withheld.gates
        return passes

    def _one_random_pass(self, step: MaskStep) -> MaskedPasses:
        """``random_modality``: one variant; row ``b`` has modality ``which[b]`` withheld (and every other modality
        clean). Each modality's replacement is built as in the default, then applied on its rows only."""
        n = step.target.shape[0]
        which_cpu = balanced_assignment(n, len(self.modalities))
        counts = torch.bincount(which_cpu, minlength=len(self.modalities)).tolist()
        which = which_cpu.to(step.target.device)
        variant: dict[str, Replacement] = {}
        entries, gates = [], {}
        for i, m in enumerate(self.modalities):
            withheld = self.masker.withhold(i, m, step, self.filler)
            rows = which == i
            variant[m] = on_rows(withheld.replacement, step.feats[m], rows)
            entries.append(MaskedEntry(m, 1, None, (rows, int(counts[i]))))
            if withheld.gates is not None:
                gates[m] = withheld.gates
        return MaskedPasses([variant], entries, gates, which)

    def _augmented(self, feats: Mapping[str, Tensor]) -> list[dict[str, Replacement]]:
        """``w_aug``: one variant per modality with its features randomly masked (``p``)."""
        if self.aug_filler is not None and self.training:
            for i, m in enumerate(self.modalities):
                self.aug_filler.observe(i, feats[m])
        return [{m: self._random_mask(i, feats[m])} for i, m in enumerate(self.modalities)]

    # ------------------------------------------------------------------ per-epoch statistics
    def _log_masked(self, logits: Tensor, target: Tensor, masked_for: Sequence[MaskedEntry],
                    pen: Tensor, gates: Mapping[str, Tensor]) -> None:
        """Keep one step's masked-pass outputs; :meth:`_reduce_records` turns a run of steps into epoch statistics
        in a few batched operations (a per-step reduction would cost SynIB about 5% of a small model's step).

        ``logits``: ``((1 + K) n, C)`` detached, the clean pass then the ``K`` masked passes; ``masked_for``:
        :class:`MaskedEntry` s, the rows of pass ``k`` (all, or ``rows``) score modality ``m``'s masking against
        ``target[target_index]`` (None: ``target``); ``pen``: ``(K, n)`` per-row penalty of each masked pass.
        """
        n = target.shape[0]
        masked_for = [MaskedEntry(*e) for e in masked_for]
        layout = (n, tuple((e.modality, e.pass_, e.target_index is None, e.rows is None) for e in masked_for),
                  tuple(gates))
        if self._records and (self._records[0].layout != layout or len(self._records) * logits.numel() > 1 << 22):
            self._reduce_records()  # a new layout, or 16 MB kept
        gate_means = torch.stack([g.mean() for g in gates.values()]).detach() if gates else None
        self._records.append(_StepRecord(layout, logits, target, [e.target_index for e in masked_for],
                                         [e.rows for e in masked_for], pen.detach(), gate_means))

    @torch.no_grad()
    def _reduce_records(self) -> None:
        """Epoch statistics of the kept steps (all of one layout): the clean confidence and, per masked modality,
        the masked pass's mean max-probability and accuracy, the penalty and the learned gates' mean."""
        if not self._records:
            return
        records = self._records
        n, entries, gate_names = records[0].layout
        steps = len(records)
        logits = torch.stack([r.logits for r in records]).float()  # (S, (1 + K) n, C)
        top, pred = logits.softmax(-1).max(-1)
        passes = top.shape[1] // n
        top, pred = top.view(steps, passes, n), pred.view(steps, passes, n)
        target = torch.stack([r.target for r in records])  # (S, n)
        self.log_epoch("clean_conf", top[:, 0].mean(), steps * n)
        pen = torch.stack([r.pen for r in records]).float()  # (S, K, n)
        for e, (m, k, plain, every_row) in enumerate(entries):
            t = target if plain else target.gather(1, torch.stack([typing.cast(Tensor, r.indices[e]) for r in records]))
            right = (pred[:, k] == t).float()
            if every_row:
                values, weight = [top[:, k].mean(), right.mean(), pen[:, k - 1].mean()], steps * n
            else:  # the rows of the pass that withhold m: weighted means
                kept = [typing.cast(tuple[Tensor, int], r.rows[e]) for r in records]
                w = torch.stack([rows for rows, _ in kept]).to(top.dtype)  # (S, n)
                weight = sum(count for _, count in kept)
                values = [(x * w).sum() / max(weight, 1) for x in (top[:, k], right, pen[:, k - 1])]
            for key, value in zip(("masked_conf", "masked_acc", "penalty"), values):
                self.log_epoch(f"{key}_{m}", value, weight)
        if gate_names:
            means = torch.stack([typing.cast(Tensor, r.gate_means) for r in records]).float().mean(0).tolist()
            for m, value in zip(gate_names, means):
                self.log_epoch(f"gate_mean_{m}", value, weight)
        self._records = []

    def pop_epoch_logs(self) -> dict[str, float]:
        self._reduce_records()
        return super().pop_epoch_logs()

    # ------------------------------------------------------------------ the objective
    def _unimodal(self, model: MultimodalModel, feats: Mapping[str, Tensor], target: Tensor,
                  parts: dict[str, Tensor]) -> tuple[dict[str, Tensor] | None, Tensor | None]:
        """Unimodal logits ``{m: (B, C)}`` where needed and their loss term: ``w_uni * sum_m CE`` on the shared
        encoders (``uni``), or with ``w_uni = 0`` the heads trained as probes on detached features (``probe``)."""
        if self.w_uni > 0:
            uni = model.unimodal_logits(feats)
            parts["uni"] = torch.stack([self.task_loss(v, target) for v in uni.values()]).sum()
            return uni, self.w_uni * parts["uni"]
        if self.needs_heads:
            uni = model.unimodal_logits({m: z.detach() for m, z in feats.items()})
            parts["probe"] = torch.stack([self.task_loss(v, target) for v in uni.values()]).sum()
            return uni, parts["probe"]
        return None, None

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        target, n = batch.target, len(batch)
        lam = self.lam_at(state.epoch)
        penalise = lam > 0
        parts: dict[str, Tensor] = {}

        # encoders once (the oracle also encodes its masked inputs); the unimodal heads' term
        feats, masked_feats = self.masker.encode(model, batch.inputs, self.filler, penalise, observe=self.training)
        uni, uni_term = self._unimodal(model, feats, target, parts)

        # the variants fused with the clean pass in one call: masked passes M(z_m), then augmented passes R(z_m)
        masked = self._masked_passes(MaskStep(model, feats, masked_feats, target)) if penalise \
            else MaskedPasses([], [], {})
        variants = masked.variants + (self._augmented(feats) if self.w_aug > 0 else [])
        fused = model.fuse_variants(feats, variants) if variants else model.fuse(feats)
        all_logits = model.head(fused)  # ((1 + K + A) n, C): clean, K masked, A augmented passes
        logvar = self.divergence_fn.log_variance(fused) if penalise else None  # gaussian: (.., C), else None
        logits = all_logits[:n]

        parts["task"] = task = self.task_loss(logits, target)
        loss = task if uni_term is None else task + uni_term
        k_masked = len(masked.variants)
        if self.w_aug > 0:
            aug = all_logits[(1 + k_masked) * n:]
            parts["aug"] = self.task_loss(aug, target.repeat(aug.shape[0] // n)) * len(self.modalities)
            loss = loss + self.w_aug * parts["aug"]
        if penalise:  # one divergence call over the masked rows [n, (1 + K) n)
            rows = slice(n, (1 + k_masked) * n)
            ref = None
            if self.uses_reference and uni is not None:
                refs = [self._reference(uni, e.modality) for e in masked.entries]
                ref = torch.cat(refs) if masked.which is None \
                    else torch.stack(refs)[masked.which, torch.arange(n, device=target.device)]  # row b: m_b's
            pen_rows = self._divergence(all_logits[rows], ref, None if logvar is None else logvar[rows])
            pen_rows = pen_rows.view(k_masked, n)
            pen = pen_rows.mean(1)  # (K,)
            # a shared pass counts for both modalities; a random-modality pass for all M (unbiased, see the docstring)
            parts["penalty"] = pen.sum() * (len(masked.entries) // k_masked)
            loss = loss + lam * parts["penalty"]
            self._log_masked(all_logits[:(1 + k_masked) * n].detach(), target, masked.entries, pen_rows,
                             masked.gates)
        self.log_epoch("lam", lam, n)
        return ObjectiveOutput(loss, logits, {k: v.detach() for k, v in parts.items()})


# ---------------------------------------------------------------------- SynIB in a training loop you own
class SynIBLoss(nn.Module):
    """SynIB on one token sequence, for a training loop you own (e.g. ``transformers.Trainer.compute_loss``).

    ``loss, logits = synib(forward, embeds, token_masks, labels, attention)`` with

    * ``forward(embeds (N, T, D), attention (N, T)) -> logits (N, C)``: your model on input embeddings;
    * ``embeds`` ``(B, T, D)``: the clean input embeddings (image features already merged in, for a VLM);
    * ``token_masks`` ``{m: (B, T) bool}``: the positions of each modality's tokens (disjoint);
    * ``labels`` ``(B,)``; ``attention`` ``(B, T)`` (None: all ones).

    ``L = CE(forward(x), y) + lam * sum_m mean_b KL(softmax(forward(x with m's tokens withheld)) || prior)``.
    The clean and the ``M`` masked sequences run in one ``forward`` call on ``(1 + M) B`` rows (``chunk``: that many
    sequences of ``B`` rows per call). Withholding (``fill``), on ``m``'s positions only:

    * ``noise`` (the authors' choice): ``N(mu_m, diag sigma_m^2)`` per embedding dimension from exponential moving
      averages (momentum ``ema``) of ``m``'s clean tokens, updated in training mode;
    * ``shuffle``: the values at the same positions of another row (a cyclic derangement of the batch);
    * ``drop``: ``m``'s positions removed from attention.

    ``random_modality``: one masked sequence instead of ``M``: row ``b`` withholds modality ``m_b`` (a balanced
    random assignment, uniform per row) and the penalty is ``M * mean_b KL_b(m_b)``, an unbiased estimate of the sum
    above and of its gradient (proof: :class:`SynIB`), on ``2B`` rows instead of ``(1 + M) B``.

    ``prior``: ``(C,)`` class probabilities (the training label distribution); None: uniform. After each call
    ``last_parts`` holds the detached terms (``task``, ``penalty``, ``masked_conf_<m>``).
    """

    log_prior: Tensor  # (C,) or empty (uniform)

    def __init__(self, lam: float = 1.0, fill: Literal["noise", "shuffle", "drop"] = "noise",
                 prior: Tensor | None = None, ema: float = 0.99, chunk: int | None = None,
                 random_modality: bool = False) -> None:
        super().__init__()
        if fill not in ("noise", "shuffle", "drop"):
            raise ConfigError(f"SynIBLoss fill: expected one of 'noise', 'shuffle', 'drop', got {fill!r}")
        if lam < 0:
            raise ConfigError(f"SynIBLoss lam: expected a non-negative number, got {lam!r}")
        self.lam, self.fill, self.ema, self.chunk = lam, fill, ema, chunk
        self.random_modality = random_modality
        self.register_buffer("log_prior", torch.zeros(0) if prior is None else prior.double().log().float())
        self.stats = nn.ModuleDict()
        self.last_parts: dict[str, Tensor] = {}

    def _stats(self, m: str, dim: int, device: torch.device) -> RunningStats:
        if m not in self.stats:
            self.stats[m] = RunningStats(dim, self.ema).to(device)
        return typing.cast(RunningStats, self.stats[m])

    def masked(self, embeds: Tensor, attention: Tensor, mask: Tensor, m: str,
               rows: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``embeds`` and ``attention`` with modality ``m``'s positions ``mask`` ``(B, T)`` withheld (on the rows
        ``rows`` ``(B,)`` bool only, if given; the noise statistics always see every row's tokens of ``m``)."""
        if self.fill == "noise":
            stats = self._stats(m, embeds.shape[-1], embeds.device)
            if self.training:
                stats.update(embeds.flatten(0, 1), mask.flatten())
        if rows is not None:
            mask = mask & rows[:, None]
        where = mask[..., None]
        if self.fill == "drop":
            return embeds, attention * (~mask).to(attention.dtype)
        if self.fill == "shuffle":
            return torch.where(where, embeds[cyclic_derangement(embeds.shape[0], embeds.device)], embeds), attention
        return torch.where(where, stats.sample(embeds), embeds), attention

    def _one_masked(self, embeds: Tensor, attention: Tensor, token_masks: Mapping[str, Tensor],
                    mods: Sequence[str]) -> tuple[tuple[Tensor, Tensor], Tensor]:
        """``random_modality``: one sequence in which row ``b`` has modality ``mods[which[b]]`` withheld; and
        ``which`` ``(B,)``."""
        which = balanced_assignment(embeds.shape[0], len(mods)).to(embeds.device)
        out, att = embeds, attention
        for i, m in enumerate(mods):  # disjoint positions: each modality's replacement reads the clean embeds
            e, a = self.masked(embeds, attention, token_masks[m].bool(), m, which == i)
            changed = token_masks[m].bool() & (which == i)[:, None]
            out = torch.where(changed[..., None], e, out)
            att = torch.where(changed, a, att)
        return (out, att), which

    def forward(self, forward: typing.Callable[[Tensor, Tensor], Tensor], embeds: Tensor,
                token_masks: Mapping[str, Tensor], labels: Tensor,
                attention: Tensor | None = None) -> tuple[Tensor, Tensor]:
        n = embeds.shape[0]
        if attention is None:
            attention = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        seqs = [(embeds, attention)]
        mods = sorted(token_masks)
        which = None
        if self.lam > 0 and self.random_modality:
            one, which = self._one_masked(embeds, attention, token_masks, mods)
            seqs.append(one)
        elif self.lam > 0:
            seqs += [self.masked(embeds, attention, token_masks[m].bool(), m) for m in mods]
        step = len(seqs) if self.chunk is None else self.chunk
        logits = torch.cat([forward(torch.cat([s[0] for s in seqs[i:i + step]]),
                                    torch.cat([s[1] for s in seqs[i:i + step]])) for i in range(0, len(seqs), step)])
        clean = logits[:n]
        task = F.cross_entropy(clean, labels)
        parts = {"task": task.detach()}
        loss = task
        if self.lam > 0:
            logp = F.log_softmax(logits[n:].float(), -1)
            c = logp.shape[-1]
            prior = self.log_prior
            base = prior if prior.numel() else torch.full((c,), -math.log(c), device=logp.device)
            kl = categorical_kl(logp, base.to(logp.device))  # (M n,) or, random_modality, (n,)
            conf = logp.exp().max(-1).values.detach()
            if which is None:
                pen = kl.view(-1, n).mean(1).sum()  # sum_m mean_b
                for k, m in enumerate(mods):
                    parts[f"masked_conf_{m}"] = conf[k * n:(k + 1) * n].mean()
            else:
                pen = len(mods) * kl.mean()  # M * mean_b KL_b(m_b): unbiased for the sum
                for k, m in enumerate(mods):
                    rows = (which == k).to(conf.dtype)
                    parts[f"masked_conf_{m}"] = (conf * rows).sum() / rows.sum().clamp_min(1)
            loss = loss + self.lam * pen
            parts["penalty"] = pen.detach()
        self.last_parts = parts
        return loss, clean
