"""Interplay: learning and measuring multimodal interactions.

Redundant, unique and synergistic information between modalities, learned (SynIB, OMIB, DMIL and
their baselines, all on one model API) and measured (exact PID, dataset and per-sample estimators).

``interplay.load_run(DIR)``, ``interplay.evaluate_run(DIR, ...)`` and ``interplay.predict(DIR, inputs)`` reuse a
trained run (:mod:`interplay.engine.reload`); they are imported on first use, so ``import interplay`` stays cheap.
"""

from typing import Any

from ._version import __version__

#: attributes imported on first access: name -> module
_LAZY = {"load_run": "interplay.engine.reload", "evaluate_run": "interplay.engine.reload",
         "predict": "interplay.engine.reload", "LoadedRun": "interplay.engine.reload",
         "analyze": "interplay.analysis"}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'interplay' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
