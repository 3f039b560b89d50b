"""Train one config with ``interplay train``'s engine and with ``InterplayModule`` in a Lightning Trainer; print both
per-epoch training losses and validation accuracies side by side (docs/lightning.md).

    python docs/examples/lightning_parity.py synib 5
"""

import sys
import warnings

import pytorch_lightning as pl

from interplay.config import RunConfig
from interplay.engine import Trainer
from interplay.lightning import InterplayModule

method = sys.argv[1] if len(sys.argv) > 1 else "joint"
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
cfg = RunConfig.from_dict({"data": {"name": "pid-xor"}, "method": {"name": method}, "train": {"epochs": epochs}})

engine = Trainer(cfg, None, quiet=True)
engine.fit()

module = InterplayModule.from_config(cfg)  # data, model and objective built as interplay train builds them
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Lightning's notes about loaders without workers, unused accelerators
    pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0).fit(module)

worst = 0.0
print("epoch  engine loss  lightning loss  engine val acc  lightning val acc")
for row, mine in zip(engine.log, module.history):
    a, b = row["train"]["loss"], mine["train"]["loss"]
    worst = max(worst, abs(a - b) / abs(a))
    print(f"{row['epoch']:5d}  {a:11.6f}  {b:14.6f}  {row['val']['accuracy']:14.4f}  {mine['val']['accuracy']:17.4f}")
print(f"{method}: largest relative difference of the epoch losses {worst:.1e}")
