"""The only place that wires the parts: config → dataset → encoder → knockout → datamodule → model → trainer
→ summary.json. ``train(cfg)`` returns the best validation value of ``cfg.monitor`` (the sweep objective)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import platform
import resource
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pytorch_lightning as pl
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_only

from mmrec import checkpoints
from mmrec import summary as summary_io
from mmrec.atomic_io import atomic_write_text, ensure_writable_folder
from mmrec.checkpoints import AtomicCheckpointIO
from mmrec.confdict import to_dict
from mmrec.config import ValidConfig, derive_seeds, validate
from mmrec.console import hydra_mode, is_verbose, job_line, quiet
from mmrec.credentials import redact_tree
from mmrec.data.datamodule import GraphData, GraphDataModule
from mmrec.data.item_features import ItemFeatures
from mmrec.errors import ConfigError, find_mmrec_error
from mmrec.models.base import Recommender
from mmrec.progress import RunProgressBar
from mmrec.runtime import configure as configure_runtime
from mmrec.sweeps.naming import study_name as sweep_study_name

log = logging.getLogger("mmrec")


def _output_dir(cfg: DictConfig) -> Path:
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except Exception:  # noqa: BLE001 - not under Hydra (API use): fall back to paths.output_dir
        return Path(cfg.paths.output_dir)


def study_name(cfg: DictConfig) -> str:
    """Every key of the condition, so conditions never share a study (``cfg.study`` overrides it)."""
    if cfg.get("study"):
        return str(cfg.study)
    return sweep_study_name(cfg)


def json_safe(obj: Any) -> Any:
    import json

    return json.loads(json.dumps(obj, default=str))


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in (
        "mmrec",
        "torch",
        "pytorch-lightning",
        "hydra-core",
        "omegaconf",
        "optuna",
        "numpy",
        "scipy",
        "torch-geometric",
        "transformers",
        "sentence-transformers",
        "wandb",
    ):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _git_sha() -> str | None:
    with contextlib.suppress(Exception):
        here = Path(__file__).resolve().parent
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if r.returncode == 0:
            return r.stdout.strip()
    return None


def _peak_memory() -> dict[str, float | None]:
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {"peak_cpu_rss_mb": rss_kb / 1024.0, "peak_gpu_mb": gpu}


def _loggers(cfg: DictConfig, run_dir: Path, study: str, condition: dict[str, Any]) -> list[Any]:
    """CSV and W&B loggers; any tracking problem becomes a warning, never an error."""
    loggers: list[Any] = []
    lcfg = cfg.logger
    if lcfg.get("csv", True):
        loggers.append(CSVLogger(save_dir=str(run_dir), name="csv", version=""))
    wcfg = lcfg.get("wandb") or {}
    if wcfg.get("enabled") and wcfg.get("mode", "offline") != "disabled" and os.environ.get("WANDB_MODE") != "disabled":
        try:
            tags = [
                f"dataset:{condition['dataset']}",
                f"model:{condition['model']}",
                f"encoder:{condition['encoder']}",
                f"knockout:{cfg.knockout.name}",
                f"seed:{cfg.seed}",
            ]
            wandb_logger = WandbLogger(
                project=wcfg.get("project", "mmrec"),
                entity=wcfg.get("entity"),
                mode=wcfg.get("mode", "offline"),
                save_dir=str(run_dir),
                group=study,
                job_type=cfg.role,
                tags=tags,
                config=redact_tree(OmegaConf.to_container(cfg, resolve=True)),
            )
            # Lightning passes anonymous=None, which W&B >= 0.19 warns about on every run
            getattr(wandb_logger, "_wandb_init", {}).pop("anonymous", None)
            loggers.append(wandb_logger)
        except Exception as e:  # noqa: BLE001
            warnings.warn(f"W&B logging disabled: {e}", stacklevel=2)
    return loggers


def _finish_wandb(failed: bool) -> None:
    with contextlib.suppress(Exception):
        import wandb

        if wandb.run is not None:
            wandb.finish(exit_code=1 if failed else 0)


def _without_name(node: DictConfig) -> dict[str, Any]:
    return {k: v for k, v in to_dict(node, resolve=True).items() if k != "name"}


@dataclass
class Job:
    """One run being executed: its validated config, seeds, where it writes, and the record it fills in
    (written as ``summary.json`` whatever happens)."""

    cfg: DictConfig
    valid: ValidConfig
    seeds: dict[str, int]
    run_dir: Path
    study: str
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def condition(self) -> dict[str, Any]:
        return self.record["condition"]


@dataclass
class BuiltData:
    """The loaded dataset, its item features (after a train-phase knockout) and the datamodule over both."""

    dataset: Any
    features: ItemFeatures | None
    datamodule: GraphDataModule
    timing: dict[str, float]
    notes: dict[str, Any]


def build_features(cfg: DictConfig, valid: ValidConfig, seeds: dict[str, int], knock: bool = True):
    """Dataset and its features (knocked out when ``knock`` and the knockout acts at training time)."""
    timing: dict[str, float] = {}
    notes: dict[str, Any] = {}
    t = time.perf_counter()
    dataset = instantiate(cfg.dataset, _convert_="all")
    timing["load"] = time.perf_counter() - t
    features: ItemFeatures | None = None
    model_cls = valid.model_cls
    if model_cls.min_modalities > 0 or valid.modalities:
        t = time.perf_counter()
        encoder = instantiate(_without_name(cfg.encoder), _convert_="all")
        encoder.name = cfg.encoder.name
        if model_cls.min_modalities > 0:
            features = encoder(dataset)
            encode_report = getattr(encoder, "report", None)
            if encode_report:
                notes = {"encoder_report": encode_report}
        timing["encode"] = time.perf_counter() - t
        if features is not None and knock and valid.knockout.phase == "train":
            t = time.perf_counter()
            features = valid.knockout.apply(features, seed=seeds["knockout"])
            timing["knockout"] = time.perf_counter() - t
    return dataset, features, timing, notes


def build_datamodule(cfg: DictConfig, dataset: Any, features: ItemFeatures | None, seed: int) -> GraphDataModule:
    return GraphDataModule(
        dataset,
        features,
        batch_size=cfg.datamodule.batch_size,
        seed=seed,
        knn_ties=cfg.knn.ties,
        exclude_val_in_test=cfg.evaluation.exclude_val_in_test,
        cold_items=cfg.evaluation.cold_items,
        negatives=cfg.datamodule.get("negatives", "train_items"),
        knn_method=cfg.knn.get("method", "exact"),
        knn_auto_max_items=int(cfg.knn.get("auto_exact_max_items", 50000)),
    )


def build_data(cfg: DictConfig, valid: ValidConfig, seeds: dict[str, int]) -> BuiltData:
    """Dataset, features after a train-phase knockout, and the datamodule."""
    dataset, features, timing, notes = build_features(cfg, valid, seeds)
    t = time.perf_counter()
    dm = build_datamodule(cfg, dataset, features, seeds["run"])
    timing["datamodule"] = time.perf_counter() - t
    return BuiltData(dataset, features, dm, timing, notes)


def build_model(cfg: DictConfig, data: GraphData, seeds: dict[str, int]) -> Recommender:
    pl.seed_everything(seeds["run"], workers=True, verbose=False)
    params = {k: v for k, v in to_dict(cfg.model, resolve=True).items() if k != "name"}
    model_cls = get_class(params.pop("_target_"))
    model = model_cls(data=data, **params)
    model.configure_training(optimizer=instantiate(cfg.optimizer) if cfg.get("optimizer") else None)
    model.configure_evaluation(
        cfg.evaluation.ks,
        cfg.evaluation.metrics,
        seed=seeds["run"],
        run_seed=seeds["run"],
        memory_mb=cfg.evaluation.memory_mb,
    )
    return model


def new_record(cfg: DictConfig, valid: ValidConfig, seeds: dict[str, int], run_dir: Path, study: str) -> dict:
    """The run record before anything runs (status ``running``); see ``summary.schema.json``."""
    knockout = valid.knockout
    freeze = cfg.model.get("freeze_features")
    condition = {
        "dataset": cfg.dataset.name,
        "model": cfg.model.name,
        "encoder": cfg.encoder.name,
        "knockout": dict(valid.knockout_spec),
        "knockout_phase": knockout.phase,
        "freeze_features": None if freeze is None else bool(freeze),
        "protocol": cfg.protocol_name,
        "knn_ties": cfg.knn.ties,
        "modalities": list(valid.modalities),
    }
    return {
        "schema_version": summary_io.SCHEMA_VERSION,
        "role": cfg.role,
        "status": "running",
        "error": None,
        "study": study,
        "trial_number": cfg.sweep.get("trial_number"),
        "transfer_from": cfg.get("transfer_from"),
        "condition": condition,
        "seeds": seeds,
        "hashes": {"interactions": "", "features": None},
        "config": OmegaConf.to_container(cfg, resolve=True),
        "hparams": {k: v for k, v in to_dict(cfg.model, resolve=True).items() if k not in ("_target_",)},
        "dataset_stats": {"n_users": 0, "n_items": 0, "n_train": 0, "n_val": 0, "n_test": 0},
        "best_epoch": None,
        "epochs_run": None,
        "monitor": cfg.monitor,
        "metrics": {"val": {}, "test": {}},
        "n_eval_users": {},
        "timing": {},
        "memory": {},
        "versions": _versions(),
        "git_sha": _git_sha(),
        "paths": {"run_dir": str(run_dir), "per_user_metrics": None, "checkpoint": None, "val_curve": None},
        "notes": {"knockout": knockout.record() if hasattr(knockout, "record") else {}},
        "created": dt.datetime.now(dt.timezone.utc).isoformat(),
    }


def train(cfg: DictConfig) -> float:
    """Run one job; returns the best validation value of ``cfg.monitor`` (NaN for test-time knockouts)."""
    t_start = time.perf_counter()
    # CPU: reuse freed heap memory, flush denormals; CUDA: the deterministic cuBLAS workspace (mmrec.runtime)
    configure_runtime(cfg.trainer.get("accelerator"), cfg.trainer.get("deterministic"))
    quiet(is_verbose(cfg))
    valid = validate(cfg)
    seeds = derive_seeds(cfg)
    run_dir = ensure_writable_folder(_output_dir(cfg), "output folder (hydra.run.dir)")
    study = study_name(cfg)
    job = Job(cfg, valid, seeds, run_dir, study, new_record(cfg, valid, seeds, run_dir, study))
    record = job.record
    failed = True
    try:
        best = _test_time_knockout(job) if valid.knockout.phase == "test" else _train_and_test(job)
        failed = False
        return best
    except BaseException as e:
        status = "failed"
        with contextlib.suppress(Exception):
            import optuna

            if isinstance(e, optuna.TrialPruned):
                status = "pruned"
        error = find_mmrec_error(e)
        record["status"] = status
        record["error"] = f"{type(error or e).__name__}: {error or e}"  # the mmrec error, not Hydra's wrapper
        if error is not None:
            error.run_record = str(run_dir / summary_io.FILENAME)
        raise
    finally:
        record["timing"]["total"] = time.perf_counter() - t_start
        record["memory"] = _peak_memory()
        if not failed:
            record["status"] = "completed"
        record_error: Exception | None = None
        is_rank_zero = rank_zero_only.rank == 0  # DDP (trainer=ddp): one record, written by global rank 0
        try:
            if is_rank_zero:
                summary_io.write(record, run_dir)
        except Exception as e:  # noqa: BLE001 - e.g. disk full: a job without its record has not succeeded
            log.error("could not write %s: %s", run_dir / summary_io.FILENAME, e)
            record_error = e
        _finish_wandb(failed or record_error is not None)
        if not failed and is_rank_zero:
            if record_error is not None:
                raise record_error
            if hydra_mode() == "MULTIRUN":
                print(job_line(record), flush=True)
            else:
                print_result(record)


def print_result(record: dict[str, Any]) -> None:
    """A table of the best validation and the test metrics, and where the run record is."""
    from rich.console import Console
    from rich.table import Table

    val, test = record["metrics"]["val"], record["metrics"]["test"]
    names = list(test or val)
    ks = sorted({int(n.split("@")[1]) for n in names})
    metrics = list(dict.fromkeys(n.split("@")[0] for n in names))
    c = record["condition"]
    ko = record["notes"].get("knockout", {}).get("label", "")
    table = Table(
        title=f"{c['model']} on {c['dataset']}, knockout {ko}, seed {record['seeds']['seed']}, "
        f"best epoch {record['best_epoch']}"
    )
    table.add_column("metric")
    table.add_column("val (best epoch)", justify="right")
    table.add_column("test", justify="right")
    for m in metrics:
        for k in ks:
            name = f"{m}@{k}"
            if name in names:
                table.add_row(name, *(f"{d[name]:.4f}" if name in d else "-" for d in (val, test)))
    console = Console()
    console.print(table)
    console.print(f"run record: {Path(record['paths']['run_dir']) / summary_io.FILENAME}")


def _progress_bar(cfg: DictConfig) -> list[pl.Callback]:
    """Quiet mode's one bar per run, replacing Lightning's bars (one per epoch and per validation)."""
    if is_verbose(cfg) or not cfg.trainer.get("enable_progress_bar", True):
        return []
    return [RunProgressBar(cfg.monitor)]


def _train_and_test(job: Job) -> float:
    cfg, record, run_dir = job.cfg, job.record, job.run_dir
    model_cls = job.valid.model_cls
    built = build_data(cfg, job.valid, job.seeds)
    dm, features = built.datamodule, built.features
    record["timing"].update(built.timing)
    record["hashes"] = {
        "interactions": dm.data.interactions_hash,
        "features": features.content_hash() if features is not None else None,
    }
    record["dataset_stats"] = dm.stats
    record["notes"].update(json_safe(built.notes))
    model = build_model(cfg, dm.data, job.seeds)
    record["notes"]["trainable_parameters"] = model.num_trainable_parameters()
    record["notes"]["uses_features_at_inference"] = model_cls.uses_features_at_inference
    callbacks = [instantiate(c) for c in (cfg.callbacks or {}).values()]
    callbacks += _progress_bar(cfg)
    if cfg.sweep.get("trial_number") is not None and cfg.sweep.get("prune") and model_cls.trainable:
        from mmrec.sweeps.pruning import OptunaPruning

        callbacks.append(OptunaPruning(cfg.sweep.storage, cfg.sweep.study_name, cfg.sweep.trial_number, cfg.monitor))
    loggers = _loggers(cfg, run_dir, job.study, job.condition)
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=str(run_dir),
        plugins=[AtomicCheckpointIO()],
    )
    ckpt_cb = next((c for c in callbacks if isinstance(c, ModelCheckpoint)), None)
    t = time.perf_counter()
    if model_cls.trainable:
        resume_from = None
        if cfg.resume:
            last = run_dir / "checkpoints" / "last.ckpt"
            if not last.exists():
                raise ConfigError(f"resume=true but {last} does not exist; set hydra.run.dir=<the run to resume>")
            resume_from = str(last)
        trainer.fit(model, datamodule=dm, ckpt_path=resume_from)
    else:
        model.fit(dm.train)
        trainer.validate(model, datamodule=dm, verbose=False)
    record["timing"]["fit"] = time.perf_counter() - t
    record["notes"]["knn_graphs"] = json_safe(dm.data.knn_builds)  # method, build time, sampled recall
    history = model.val_history
    best_value, best_epoch = float("nan"), None
    if history:
        curve = pd.DataFrame(history)
        atomic_write_text(run_dir / "val_curve.csv", curve.to_csv(index=False))
        record["paths"]["val_curve"] = "val_curve.csv"
        col = cfg.monitor
        idx = curve[col].idxmax()
        best_value, best_epoch = float(cast(Any, curve.at[idx, col])), int(cast(Any, curve.at[idx, "epoch"]))
        record["metrics"]["val"] = {k.split("/", 1)[1]: float(v) for k, v in curve.loc[idx].items() if k != "epoch"}
        record["epochs_run"] = int(curve["epoch"].max()) + 1
    record["best_epoch"] = best_epoch
    record["n_eval_users"]["val"] = int(dm.stats.get("n_eval_users_val", 0))
    best_ckpt = ckpt_cb.best_model_path if ckpt_cb is not None and ckpt_cb.best_model_path else None
    record["paths"]["checkpoint"] = os.path.relpath(best_ckpt, run_dir) if best_ckpt else None
    if cfg.role != "trial":
        t = time.perf_counter()
        trainer.test(model, datamodule=dm, ckpt_path=best_ckpt if model_cls.trainable else None, verbose=False)
        record["timing"]["test"] = time.perf_counter() - t
        _write_test(model, run_dir, record)
        record["n_eval_users"]["test"] = int(dm.stats.get("n_eval_users_test", 0))
    return best_value


def _write_test(model: Recommender, run_dir: Path, record: dict[str, Any]) -> None:
    record["metrics"]["test"] = {k: float(v) for k, v in model.test_metrics.items()}
    if model.test_per_user is not None:
        atomic_write_text(run_dir / "per_user_test.csv", model.test_per_user.to_csv(index=False))
        record["paths"]["per_user_metrics"] = "per_user_test.csv"


def _test_time_knockout(job: Job) -> float:
    """Evaluate a model trained on real features (``knockout.from_run``) with knocked-out features."""
    cfg, record, run_dir = job.cfg, job.record, job.run_dir
    source_dir = Path(cfg.knockout.from_run)
    source = summary_io.read(source_dir)
    if source["condition"]["knockout_phase"] != "train" or any(
        v != "keep" for v in source["condition"]["knockout"].values()
    ):
        raise ConfigError(f"{source_dir}: knockout.from_run must be a run trained on real features")
    src_cfg = cast(DictConfig, OmegaConf.create(source["config"]))  # from a mapping: a DictConfig
    ckpt = source["paths"].get("checkpoint")
    if not ckpt:
        raise ConfigError(f"{source_dir}: the source run has no checkpoint")
    src_seeds = source["seeds"]
    record["seeds"] = {**src_seeds, "knockout": job.seeds["knockout"]}
    record["condition"]["model"] = src_cfg.model.name
    record["notes"]["source_run"] = str(source_dir)
    src_valid = dataclasses.replace(job.valid, model_cls=validate(_reparent(src_cfg, cfg)).model_cls)
    dataset, features, timing, _ = build_features(src_cfg, src_valid, src_seeds, knock=False)
    record["timing"].update(timing)
    uses_features = src_valid.model_cls.uses_features_at_inference
    knocked = (
        job.valid.knockout.apply(features, seed=job.seeds["knockout"])
        if uses_features and features is not None
        else features
    )
    t = time.perf_counter()
    dm = build_datamodule(src_cfg, dataset, knocked, src_seeds["run"])
    record["timing"]["datamodule"] = time.perf_counter() - t
    record["dataset_stats"] = dm.stats
    record["hashes"] = {
        "interactions": dm.data.interactions_hash,
        "features": knocked.content_hash() if knocked is not None else None,
    }
    if not uses_features:
        record["notes"]["test_time_knockout"] = "not applicable: the model uses no features at inference"
        return float("nan")
    # The model is rebuilt on the real features it was trained with, then re-attached to the knocked ones.
    model = build_model(src_cfg, dataclasses.replace(dm.data, features=features, _memo={}), src_seeds)
    state = checkpoints.load(source_dir / ckpt)["state_dict"]
    model.load_state_dict(state)
    model.attach(dm.data)
    trainer = instantiate(src_cfg.trainer, callbacks=_progress_bar(cfg), logger=False, default_root_dir=str(run_dir))
    trainer.test(model, datamodule=dm, verbose=False)
    _write_test(model, run_dir, record)
    record["n_eval_users"]["test"] = int(dm.stats.get("n_eval_users_test", 0))
    record["metrics"]["val"] = source["metrics"]["val"]
    return float("nan")


def _reparent(src_cfg: DictConfig, cfg: DictConfig) -> DictConfig:
    """The source run's config with this job's (test-phase) knockout, for validation only."""
    merged = cast(DictConfig, OmegaConf.create(to_dict(src_cfg, resolve=True)))
    merged.knockout = OmegaConf.create(
        {**to_dict(src_cfg.knockout), "spec": "none", "phase": "train", "from_run": None}
    )
    return merged
