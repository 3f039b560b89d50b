"""Convolutional encoders: shapes, the rank-based auto choice, batch independence, bad shapes."""

import pytest
import torch

import interplay.models.vision  # noqa: F401  (registers "cnn", "frames")
from interplay.config import ModelConfig
from interplay.data import DataInfo
from interplay.errors import ConfigError
from interplay.models import ENCODERS, build_model
from interplay.models.vision import ConvEncoder, FramesEncoder


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 65, 51), (1, 3, 1), (2, 5, 7)])
def test_cnn_shapes_and_gradients(shape):
    enc = ENCODERS.get("cnn")(shape, [4, 8, 6], 0.1)
    x = torch.randn(5, *shape, requires_grad=True)
    y = enc(x)
    assert y.shape == (5, 6) and enc.out_dim == 6
    y.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in enc.parameters())


def test_frames_is_mean_of_per_frame_features():
    torch.manual_seed(0)
    enc = FramesEncoder((3, 3, 16, 16), [4, 8]).eval()
    x = torch.randn(2, 3, 3, 16, 16)
    per_frame = torch.stack([enc.frame(x[:, t]) for t in range(3)], 1).mean(1)
    assert torch.allclose(enc(x), per_frame, atol=1e-6)
    assert torch.allclose(enc(x), enc(x[:, [2, 0, 1]]), atol=1e-6)  # order of frames does not matter


def test_sample_features_do_not_depend_on_the_batch():
    torch.manual_seed(0)
    enc = ConvEncoder((3, 16, 16), [4, 8]).train()  # GroupNorm: same in train and eval mode
    x = torch.randn(6, 3, 16, 16)
    assert torch.allclose(enc(x)[:2], enc(x[:2]), atol=1e-6)


def test_auto_picks_cnn_and_frames_and_trains():
    info = DataInfo(name="av", modalities={"audio": (1, 17, 9), "visual": (2, 3, 8, 8)}, num_classes=3)
    model = build_model(ModelConfig(encoder_hidden=[4, 8], fusion_hidden=[8]), info)
    assert isinstance(model.encoders["audio"], ConvEncoder) and isinstance(model.encoders["visual"], FramesEncoder)
    inputs = {"audio": torch.randn(4, 1, 17, 9), "visual": torch.randn(4, 2, 3, 8, 8)}
    loss = torch.nn.functional.cross_entropy(model(inputs), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    assert model(inputs).shape == (4, 3) and torch.isfinite(loss)


@pytest.mark.parametrize("name, shape, hidden, message", [
    ("cnn", (3, 8), [4], "cnn expects (C, H, W)"),
    ("cnn", (3, 8, 8), [], "at least one channel width"),
    ("frames", (3, 8, 8), [4], "frames expects (T, C, H, W)"),
])
def test_bad_shapes(name, shape, hidden, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ENCODERS.get(name)(shape, hidden, 0.0)
