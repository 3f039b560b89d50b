"""Every registered objective on every synthetic dataset: forward, backward, optimiser step, prediction.

Parametrised over the registry, so a new method is covered as soon as its file exists.
"""

from pathlib import Path

import pytest
import torch

from interplay.config import MethodConfig, ModelConfig
from interplay.data import DATASETS
from interplay.errors import ConfigError
from interplay.models import build_model
from interplay.objectives import METHODS, Objective, TrainState, build_objective

SYNTHETIC = {
    "pid-xor": {"mix": "unique1=0.25,unique2=0.25,redundant=0.25,synergistic=0.25"},
    "pid-xor-3": {"modalities": 3, "mix": "unique3=0.5,synergistic=0.5"},
    "gaussian-split": {"preset": "sim3", "num_classes": 3},
    "gaussian-split-regression": {"preset": "sim1", "task": "regression"},
}


@pytest.fixture(scope="module")
def datasets():
    out = {}
    for key, params in SYNTHETIC.items():
        name = "pid-xor" if key.startswith("pid-xor") else "gaussian-split"
        out[key] = DATASETS.get(name)(seed=0, n_train=96, n_test=32, val_fraction=0.25, root=None, **params)
    return out


@pytest.mark.parametrize("data_key", sorted(SYNTHETIC))
@pytest.mark.parametrize("method", METHODS.names())
def test_step_on_every_dataset(method, data_key, datasets):
    torch.manual_seed(0)
    data = datasets[data_key]
    model = build_model(ModelConfig(encoder_hidden=[16], fusion_hidden=[16]), data.info)
    objective = build_objective(MethodConfig(method))
    assert isinstance(objective, Objective) and isinstance(objective, torch.nn.Module)
    if data.info.task not in objective.tasks:
        with pytest.raises(ConfigError, match=f"supports {objective.tasks[0]}"):
            objective.setup(model, data)
        return
    objective.setup(model, data)
    batch = data.train.batch(torch.arange(32))
    for i, stage in enumerate(objective.stages(2)):
        named = [*model.named_parameters(prefix="model"), *objective.named_parameters(prefix="objective")]
        params = [p for n, p in named if stage.trainable is None or stage.trainable(n)]
        assert params, f"stage {stage.name} trains nothing"
        before = [p.detach().clone() for p in params]
        opt = torch.optim.Adam(params, lr=1e-2)
        state = TrainState(epoch=i, stage=stage.name, stage_epochs=stage.epochs, num_epochs=2)
        out = objective(model, batch, state)
        assert out.loss.ndim == 0 and torch.isfinite(out.loss)
        assert out.logits.shape == (32, data.info.num_classes)
        assert all(torch.isfinite(torch.as_tensor(v)).all() for v in out.parts.values())
        opt.zero_grad()
        out.loss.backward()
        objective.on_after_backward(model, state)
        opt.step()
        assert any(not torch.equal(b, p) for b, p in zip(before, params)), "no parameter moved"
    model.eval()
    objective.eval()
    pred = objective.predict(model, data.test.batch(torch.arange(len(data.test))))
    assert pred.logits.shape == (len(data.test), data.info.num_classes)
    again = objective.predict(model, data.test.batch(torch.arange(len(data.test))))
    assert torch.equal(pred.logits, again.logits), "evaluation must be deterministic"


@pytest.mark.parametrize("method", METHODS.names())
def test_registry_key_is_file_name_and_described(method):
    cls = METHODS.get(method)
    assert Path(cls.__module__.replace(".", "/")).name == method
    assert cls.description and "\n" not in cls.description
