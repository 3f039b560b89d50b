"""An Interplay dataset defined outside the package: two noisy views whose label is the XOR of two signs.

Use it with ``interplay --plugin docs/examples/my_dataset.py train --data my-xor ...``. The builder's keyword
parameters other than the common ones (``seed, n_train, n_test, val_fraction, root``) are the dataset's
parameters: ``--set data.dim=16 --set data.noise=0.3``.
"""

from __future__ import annotations

import numpy as np
import torch

from interplay.data import DATASETS, DataInfo, DataSplits, MultimodalDataset


@DATASETS.register("my-xor")
def my_xor(*, seed: int, n_train: int | None, n_test: int | None, val_fraction: float, root: str | None,
           dim: int = 8, noise: float = 0.5) -> DataSplits:
    """Two views a, b of ``dim`` features; the label is sign(a[0]) XOR sign(b[0]) (a synergistic task).

    ``n_train`` (default 1000, of which ``val_fraction`` are validation) and ``n_test`` (default 1000) samples.
    """
    n_train = 1000 if n_train is None else n_train
    n_test = 1000 if n_test is None else n_test
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    a = rng.normal(0.0, noise, size=(n, dim))
    b = rng.normal(0.0, noise, size=(n, dim))
    bits = rng.integers(0, 2, size=(n, 2))
    a[:, 0] += 2.0 * bits[:, 0] - 1.0
    b[:, 0] += 2.0 * bits[:, 1] - 1.0
    y = bits[:, 0] ^ bits[:, 1]

    def split(rows: slice, name: str) -> MultimodalDataset:
        inputs = {"a": torch.as_tensor(a[rows], dtype=torch.float32),
                  "b": torch.as_tensor(b[rows], dtype=torch.float32)}
        return MultimodalDataset(inputs, torch.as_tensor(y[rows], dtype=torch.long), name=f"my-xor/{name}")

    n_val = int(round(val_fraction * n_train))
    info = DataInfo(name="my-xor", modalities={"a": (dim,), "b": (dim,)}, num_classes=2,
                    class_names=["same sign", "different signs"])
    return DataSplits(train=split(slice(0, n_train - n_val), "train"),
                      val=split(slice(n_train - n_val, n_train), "val"),
                      test=split(slice(n_train, n), "test"), info=info)
