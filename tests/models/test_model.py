import pytest
import torch

from interplay.config import ModelConfig
from interplay.data import DataInfo
from interplay.errors import DataError
from interplay.models import build_model

INFO = DataInfo(name="toy", modalities={"b": (5,), "a": (3, 2)}, num_classes=4)


def test_shapes_and_sorted_modalities():
    model = build_model(ModelConfig(encoder_hidden=[16, 8], fusion_hidden=[12]), INFO)
    inputs = {"a": torch.randn(7, 3, 2), "b": torch.randn(7, 5)}
    feats = model.encode(inputs)
    assert model.modalities == ["a", "b"] and {m: f.shape for m, f in feats.items()} == {
        "a": (7, 8), "b": (7, 8)}
    assert model.fuse(feats).shape == (7, 12) and model(inputs).shape == (7, 4)
    assert {m: v.shape for m, v in model.unimodal_logits(feats).items()} == {"a": (7, 4), "b": (7, 4)}


def test_present_zeroes_withheld_modalities():
    model = build_model(ModelConfig(encoder_hidden=[8], fusion_hidden=[]), INFO)
    feats = model.encode({"a": torch.randn(3, 3, 2), "b": torch.randn(3, 5)})
    only_a = model.logits(feats, present={"a"})
    zeroed = model.logits({"a": feats["a"], "b": torch.zeros_like(feats["b"])})
    assert torch.allclose(only_a, zeroed)
    # linear fusion: the logit splits into per-modality shares (minus one bias)
    full = model.logits(feats)
    assert torch.allclose(full, only_a + model.logits(feats, present={"b"}) - model.head.bias, atol=1e-6)


def test_missing_modality_is_a_clear_error():
    model = build_model(ModelConfig(encoder_hidden=[8]), INFO)
    with pytest.raises(DataError, match="batch is missing modality 'b'"):
        model.encode({"a": torch.randn(2, 3, 2)})


@pytest.mark.parametrize("encoder", ["gru", "transformer"])
def test_sequence_encoders(encoder):
    info = DataInfo(name="seq", modalities={"text": (7, 5), "audio": (7, 3)}, num_classes=1, task="regression")
    model = build_model(ModelConfig(encoder=encoder, encoder_hidden=[16], fusion_hidden=[8]), info)
    x = {"text": torch.randn(4, 7, 5), "audio": torch.randn(4, 7, 3)}
    out = model(x)
    assert out.shape == (4, 1) and torch.isfinite(out).all()
    if encoder == "transformer":  # zero rows are masked padding: trailing padding changes nothing
        model.eval()
        x["text"][:, -2:] = 0
        assert torch.allclose(model.encoders["text"](x["text"]), model.encoders["text"](x["text"][:, :5]), atol=1e-5)


def test_auto_encoder_and_overrides():
    from interplay.errors import ConfigError

    info = DataInfo(name="seq", modalities={"text": (7, 5), "vec": (3,)}, num_classes=2)
    model = build_model(ModelConfig(encoder_hidden=[8], fusion_hidden=[8]), info)
    assert type(model.encoders["text"]).__name__ == "GRUEncoder"
    assert type(model.encoders["vec"]).__name__ == "MLPEncoder"
    model = build_model(ModelConfig(encoders={"text": "transformer"}, encoder_hidden=[8]), info)
    assert type(model.encoders["text"]).__name__ == "TransformerEncoder"
    with pytest.raises(ConfigError, match="model.encoders: unknown modality 'img'"):
        build_model(ModelConfig(encoders={"img": "mlp"}), info)
