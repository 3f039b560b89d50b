"""``train.loggers: [mlflow]``: one MLflow run per Interplay run.

Where it logs, first that applies:

1. ``train.mlflow_tracking_uri`` (e.g. ``http://host:5000``, ``databricks``, ``file:/shared/mlruns``);
2. the environment's ``MLFLOW_TRACKING_URI`` (MLflow's own convention; not recorded in config.yaml, so a URI
   that carries credentials stays out of the run directory);
3. a local file store inside the run directory, ``RUN_DIR/mlruns`` (``mlflow ui --backend-store-uri
   RUN_DIR/mlruns``). A run without a run directory (no ``--out``) and no URI logs nothing (one warning line).

MLflow 3 refuses local file stores unless ``MLFLOW_ALLOW_FILE_STORE=true`` (it asks for a database backend, which
``mlflow-skinny`` does not ship); this logger sets it while it talks to a local file store, for that store only.
The experiment is ``MLFLOW_EXPERIMENT_NAME`` or ``interplay``; the MLflow run is named after the run directory.

What it logs, all read from what the engine has already written (the run directory stays the source of truth):

- the resolved config as parameters ``section.key`` (``train.lr``, ``data.mix``, ``method.lam``, ...; strings as
  they are, other values as JSON: ``[16]``, ``null``, ``true``), and tags ``interplay.run_dir``,
  ``interplay.method``, ``interplay.data``, ``interplay.version``;
- each epoch's log.jsonl row: every numeric value under its slash-joined path (``train/loss``, ``train/accuracy``,
  ``val/accuracy``, ``val/accuracy_by_interaction/synergistic``, ``lr``, ``objective/...``) at step = the epoch
  number (1-based);
- at the end, ``metrics.json``'s test metrics (``test/accuracy``, ``test/accuracy_by_interaction/...``) at the last
  epoch's step, and ``config.yaml``, ``log.jsonl`` and ``metrics.json`` as artifacts; the MLflow run is then
  ``FINISHED``.

The MLflow run is created after the first epoch is saved (a run that fails before it leaves no MLflow run and
nothing in its run directory). ``RUN_DIR/mlflow.json`` records its tracking URI and id: a resumed run continues the
same MLflow run (an interrupted one stays ``RUNNING`` until then), logging the epochs of log.jsonl it does not hold
yet, so a logger added on resume also gets the earlier epochs. Parameters are set when the MLflow run is created
(MLflow parameters are immutable); keys added later are added. Needs the optional dependency ``mlflow-skinny`` (or
``mlflow``): ``pip install 'interplay[mlflow]'``; it is imported only when the logger is checked or used.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..._version import __version__
from ...errors import ConfigError
from ...io import atomic_write_json
from ..callbacks import LOGGERS, Callback, flatten_numbers

MISSING = "train.loggers: mlflow needs the optional dependency mlflow (pip install 'interplay[mlflow]')"

#: the run directory's record of its MLflow run (tracking URI, experiment and run id)
RECORD = "mlflow.json"
DEFAULT_EXPERIMENT = "interplay"
#: MLflow's limits (a parameter value's length; entries per log_batch call)
MAX_PARAM_LENGTH = 6000
BATCH = 100


def _mlflow_installed() -> bool:
    try:
        return find_spec("mlflow") is not None
    except (ImportError, ValueError):  # a parent that cannot be imported, or a module without a spec
        return False


def _client_class() -> Any:
    """``mlflow.tracking.MlflowClient`` (imported now), or the one-line :class:`ConfigError`."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError(MISSING) from None
    return MlflowClient


def param_value(value: Any) -> str:
    """A config value as an MLflow parameter: strings as they are, everything else as JSON (``[16]``, ``null``,
    ``true``, ``0.0003``); cut to MLflow's limit of 6000 characters."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."


def config_params(config: dict[str, Any]) -> dict[str, str]:
    """``{"train": {"lr": 0.1}}`` -> ``{"train.lr": "0.1"}``: the resolved config as MLflow parameters."""
    return {f"{section}.{key}": param_value(value) for section, values in config.items()
            for key, value in values.items()}


def is_local(uri: str) -> bool:
    """Whether a tracking URI names a local file store (a path or ``file:``; not a server or a database)."""
    if uri.startswith("databricks"):  # "databricks", "databricks-uc", "databricks://profile"
        return False
    scheme = urlparse(uri).scheme
    return scheme in ("", "file") or len(scheme) == 1  # len 1: a Windows drive letter


@contextlib.contextmanager
def _file_store_allowed(uri: str) -> Iterator[None]:
    """Opt in to MLflow 3's local file store (``MLFLOW_ALLOW_FILE_STORE``) for the duration, for a local URI."""
    if not is_local(uri):
        yield
        return
    key = "MLFLOW_ALLOW_FILE_STORE"
    before = os.environ.get(key)
    os.environ[key] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    try:  # an MlflowException's JSON-ish message: keep its human part
        text = json.loads(text).get("message", text)
    except (ValueError, AttributeError):
        pass
    line = (text.splitlines() or [type(exc).__name__])[0]
    return line.split(". ")[0] + "." if len(line) > 200 and ". " in line else line


def _millis() -> int:
    return int(time.time() * 1000)


@LOGGERS.register("mlflow")
class MLflowLogger(Callback):
    """Log the run's config, epoch rows and test metrics to an MLflow run (see the module docstring for where)."""

    @classmethod
    def check(cls) -> None:
        if not _mlflow_installed():
            raise ConfigError(MISSING)

    def __init__(self) -> None:
        self.check()
        self.uri: str | None = None
        self.client: Any = None
        self.run_id: str | None = None
        self._config: dict[str, Any] = {}
        self._logged = 0  # the last epoch this MLflow run holds

    # ------------------------------------------------------------------ where
    def tracking_uri(self, trainer: Any) -> str | None:
        """The tracking URI this run logs to (see the module docstring), or ``None`` when there is none."""
        uri = trainer.cfg.train.mlflow_tracking_uri
        if uri is not None and not uri.strip():
            raise ConfigError("train.mlflow_tracking_uri: expected an MLflow tracking URI (e.g. http://host:5000 "
                              "or file:/path/mlruns) or null, got an empty string")
        uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or None
        if uri is None and trainer.out is not None:
            uri = (Path(trainer.out) / "mlruns").resolve().as_uri()
        return uri

    @contextlib.contextmanager
    def _talking(self, what: str) -> Iterator[None]:
        """Turn MLflow's and the file system's errors into one line naming the tracking URI."""
        assert self.uri is not None
        from mlflow.exceptions import MlflowException

        try:
            with _file_store_allowed(self.uri):
                yield
        except (MlflowException, OSError) as exc:
            raise ConfigError(f"train.loggers: mlflow: {self.uri}: cannot {what} ({_first_line(exc)})") from None

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer: Any, config: dict[str, Any]) -> None:
        self._config = config
        self.uri = self.tracking_uri(trainer)
        if self.uri is None:
            print("interplay: warning: train.loggers: mlflow logs nothing for a run without a run directory (--out) "
                  "or a tracking URI (train.mlflow_tracking_uri, MLFLOW_TRACKING_URI)", file=sys.stderr)
            return
        if not is_local(self.uri):  # a server or a database: check the URI now (a local store is created later)
            with self._talking("use this tracking URI"):
                self.client = _client_class()(tracking_uri=self.uri)

    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None:
        if self.uri is None:
            return
        self._open(trainer)
        earlier = [r for r in getattr(trainer, "log", []) if self._logged < int(r["epoch"]) < int(row["epoch"])]
        self._log_rows([*earlier, row])

    def on_fit_end(self, trainer: Any, metrics: dict[str, Any]) -> None:
        if self.uri is None:
            return
        self._open(trainer)
        self._log_rows([r for r in getattr(trainer, "log", []) if int(r["epoch"]) > self._logged])
        test = flatten_numbers({"test": metrics.get("test", {})})
        with self._talking("log the test metrics"):
            self._log_metrics(test, self._logged)
            out = trainer.out
            if out is not None:
                for name in ("config.yaml", "log.jsonl", "metrics.json"):
                    if (Path(out) / name).exists():
                        self.client.log_artifact(self.run_id, str(Path(out) / name))
            self.client.set_terminated(self.run_id, "FINISHED")

    # ------------------------------------------------------------------ the MLflow run
    def _open(self, trainer: Any) -> None:
        """Create this run's MLflow run, or reopen the one ``RUN_DIR/mlflow.json`` records (same tracking URI)."""
        if self.run_id is not None:
            return
        with self._talking("open the MLflow run"):
            if self.client is None:
                self.client = _client_class()(tracking_uri=self.uri)
            run = self._recorded_run(trainer)
            if run is None:
                run = self._create_run(trainer)
                existing: dict[str, str] = {}
            else:
                existing = dict(run.data.params)
                if run.info.status != "RUNNING":
                    self.client.update_run(run.info.run_id, status="RUNNING")
            self.run_id = run.info.run_id
            params = {k: v for k, v in config_params(self._config).items() if k not in existing}
            items = list(params.items())
            from mlflow.entities import Param

            for i in range(0, len(items), BATCH):
                self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in items[i:i + BATCH]])
            history = self.client.get_metric_history(self.run_id, "train/loss")
            self._logged = max((int(m.step) for m in history), default=0)

    def _recorded_run(self, trainer: Any) -> Any:
        """The MLflow run ``RUN_DIR/mlflow.json`` names, if it is on this tracking URI and still exists."""
        if trainer.out is None or not (Path(trainer.out) / RECORD).exists():
            return None
        try:
            record = json.loads((Path(trainer.out) / RECORD).read_text())
            if record.get("tracking_uri") != self.uri:
                return None
            return self.client.get_run(record["run_id"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        except Exception as exc:  # a run deleted from the store: start a new one
            from mlflow.exceptions import MlflowException

            if isinstance(exc, MlflowException):
                return None
            raise

    def _create_run(self, trainer: Any) -> Any:
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            from mlflow.exceptions import MlflowException

            try:
                experiment_id = self.client.create_experiment(name)
            except MlflowException:  # created meanwhile by a parallel run
                experiment_id = self.client.get_experiment_by_name(name).experiment_id
        cfg = trainer.cfg
        out = Path(trainer.out).resolve() if trainer.out is not None else None
        tags = {"interplay.method": cfg.method.name, "interplay.data": cfg.data.name,
                "interplay.version": __version__, "interplay.run_dir": str(out) if out is not None else ""}
        run = self.client.create_run(experiment_id, tags=tags,
                                     run_name=out.name if out is not None else f"{cfg.method.name}-{cfg.data.name}")
        if out is not None:
            atomic_write_json(out / RECORD, {"tracking_uri": self.uri, "experiment_id": experiment_id,
                                             "run_id": run.info.run_id})
        return run

    def _log_metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = _millis()
        items = list(values.items())
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in items[i:i + BATCH]])

    def _log_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        with self._talking("log the epoch metrics"):
            for row in rows:
                step = int(row["epoch"])
                self._log_metrics(flatten_numbers({k: v for k, v in row.items() if k != "epoch"}), step)
                self._logged = max(self._logged, step)
