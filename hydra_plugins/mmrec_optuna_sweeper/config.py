"""``hydra/sweeper=mmrec_optuna``: the settings of mmrec's Optuna sweeper (every key overridable).

``hydra.sweeper.``

- ``mode`` (tune): ``tune`` runs one Optuna study per grid point; ``grid`` runs every grid point once, like
  ``hydra/sweeper=basic`` but with this schema, so configs that set ``hydra.sweeper.*`` keys still compose
  (the repeat command uses it: ``seed=1,2,3`` there is a plain list).
- ``n_trials`` (20): finished trials per study (complete + pruned + failed). Re-running the same command
  resumes: it runs only what is missing, so raising ``n_trials`` extends a finished study.
- ``n_jobs`` (1): trials asked and launched together, as one batch of the configured Hydra launcher
  (``hydra/launcher=joblib`` runs them in parallel; submitit sends them to SLURM).
- ``direction`` (maximize): of the value ``train.py`` returns (the best validation ``cfg.monitor``).
- ``storage`` (null → ``<output_root>/optuna-journal.log``): see :mod:`mmrec.sweeps.storage`.
- ``study_name`` (null → built from the condition, :mod:`mmrec.sweeps.naming`): or a template resolved per
  grid point, e.g. ``${dataset.name}-${model.name}-wide``.
- ``sampler``: chosen with ``hydra/sweeper/sampler=<tpe|random|grid|gp|cmaes|qmc|bruteforce>`` (default
  ``tpe``: TPE, seed 0, constant liar), then tuned key by key (``hydra.sweeper.sampler.seed=1``,
  ``+hydra.sweeper.sampler.<other kwarg>=...``); any ``{_target_: <optuna sampler class>, ...}`` works.
- ``pruner``: ``hydra/sweeper/pruner=<median|percentile|hyperband|successive_halving|threshold|none>``
  (default ``median``: 5 start-up trials, 10 warm-up epochs), e.g. ``hydra.sweeper.pruner.lower=0.01``;
  ``none`` (or ``hydra.sweeper.pruner=null``) disables pruning.
- ``params`` / ``grid``: the search space, normally from ``conf/hparams_search/<model>.yaml`` (picked from
  the chosen model unless ``hparams_search=<name>`` is given); format in :mod:`mmrec.sweeps.space`.
- ``heartbeat_interval`` (60 s), ``grace_period`` (null = 2 × interval), ``max_retry`` (1): dead-worker
  detection and retries, :mod:`mmrec.sweeps.storage`.
- ``max_consecutive_failures`` (5): stop the sweep when this many trials in a row fail.
- ``check_overrides`` (true): refuse to add trials to an existing study created with other command-line
  overrides (e.g. a 2-epoch smoke test), which would mix incomparable trials.
- ``output_root`` (null → the app's ``paths.output_root``, else ``outputs``): trials run in
  ``<output_root>/<study>/trials/<n>/``; the default journal is ``<output_root>/optuna-journal.log``.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

_SEEDED = {"seed": 0}

SAMPLERS: dict[str, dict[str, Any]] = {
    "tpe": {
        "_target_": "optuna.samplers.TPESampler",
        **_SEEDED,
        "n_startup_trials": 10,
        "constant_liar": True,
        "multivariate": False,
        "group": False,
    },
    "random": {"_target_": "optuna.samplers.RandomSampler", **_SEEDED},
    "grid": {"_target_": "optuna.samplers.GridSampler", **_SEEDED},  # walks hydra.sweeper.grid
    "gp": {"_target_": "optuna.samplers.GPSampler", **_SEEDED, "n_startup_trials": 10},
    "cmaes": {"_target_": "optuna.samplers.CmaEsSampler", **_SEEDED, "n_startup_trials": 1},
    "qmc": {"_target_": "optuna.samplers.QMCSampler", **_SEEDED, "qmc_type": "sobol", "scramble": True},
    "bruteforce": {"_target_": "optuna.samplers.BruteForceSampler", **_SEEDED},
}
_STEPS = {"n_startup_trials": 5, "n_warmup_steps": 10, "interval_steps": 1, "n_min_trials": 1}
PRUNERS: dict[str, dict[str, Any]] = {
    "median": {"_target_": "optuna.pruners.MedianPruner", **_STEPS},
    "percentile": {"_target_": "optuna.pruners.PercentilePruner", "percentile": 25.0, **_STEPS},
    "hyperband": {
        "_target_": "optuna.pruners.HyperbandPruner",
        "min_resource": 1,
        "max_resource": "auto",
        "reduction_factor": 3,
    },
    "successive_halving": {
        "_target_": "optuna.pruners.SuccessiveHalvingPruner",
        "min_resource": "auto",
        "reduction_factor": 4,
        "min_early_stopping_rate": 0,
    },
    "threshold": {
        "_target_": "optuna.pruners.ThresholdPruner",
        "lower": None,
        "upper": None,
        "n_warmup_steps": 0,
        "interval_steps": 1,
    },
    "none": {"_target_": "optuna.pruners.NopPruner"},
}


@dataclass
class MMRecOptunaSweeperConf:
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"sampler": "tpe"}, {"pruner": "median"}])
    _target_: str = "hydra_plugins.mmrec_optuna_sweeper.mmrec_optuna_sweeper.MMRecOptunaSweeper"
    _recursive_: bool = False  # sampler/pruner specs reach the sweeper as specs, not objects
    mode: str = "tune"  # tune: one Optuna study per grid point | grid: every grid point once (no Optuna)
    n_trials: int = 20
    n_jobs: int = 1
    direction: str = "maximize"
    storage: str | None = None
    study_name: str | None = None
    sampler: Any = None  # from hydra/sweeper/sampler=<name>
    pruner: Any = None  # from hydra/sweeper/pruner=<name>
    params: Any = None
    grid: Any = None
    heartbeat_interval: int | None = 60
    grace_period: int | None = None
    max_retry: int | None = 1
    max_consecutive_failures: int | None = 5
    check_overrides: bool = True
    output_root: str | None = None  # null: the app's paths.output_root, else "outputs"


_store = ConfigStore.instance()
_store.store(group="hydra/sweeper", name="mmrec_optuna", node=MMRecOptunaSweeperConf, provider="mmrec")
for _name, _node in SAMPLERS.items():
    _store.store(group="hydra/sweeper/sampler", name=_name, node=_node, provider="mmrec")
for _name, _node in PRUNERS.items():
    _store.store(group="hydra/sweeper/pruner", name=_name, node=_node, provider="mmrec")
