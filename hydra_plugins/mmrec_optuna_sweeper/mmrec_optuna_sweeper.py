"""The Hydra side of mmrec's Optuna sweeper: grid of conditions → one study each → launcher batches.

For each grid point (see :mod:`mmrec.sweeps.grid`) the sweeper composes the point's config (with the model's
``hparams_search`` file), names its study, checks the search space composes, and runs
:func:`mmrec.sweeps.optimize.optimize`, whose ``launch`` sends each batch of trials to ``self.launcher``.
Every job gets these overrides on top of the grid point's::

    role=trial study=<study> seed=<unchanged> sweep.storage=<url> sweep.study_name=<study>
    sweep.trial_number=<n> sweep.prune=true hydra.sweep.dir=<output_root>/<study>
    hydra.sweep.subdir=trials/<n> <param>=<value> ...

A job that raises ``optuna.TrialPruned`` (or writes ``summary.json`` with status ``pruned``) is told PRUNED;
any other exception FAIL, with the message in the trial's ``mmrec:error`` attribute.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)

_NO_PRUNER = ("optuna.pruners.NopPruner", "optuna.pruners._nop.NopPruner")


def _container(node: Any, resolve: bool = True) -> Any:
    if isinstance(node, DictConfig) or OmegaConf.is_list(node):
        return OmegaConf.to_container(node, resolve=resolve)
    return node


class MMRecOptunaSweeper(Sweeper):
    """One Optuna study per grid point, trials launched through the configured Hydra launcher."""

    def __init__(self, **settings: Any) -> None:
        super().__init__()
        self.settings = settings
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None
        self._job_idx = 0

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    # ------------------------------------------------------------------ settings

    def _setting(self, key: str, default: Any = None) -> Any:
        assert self.config is not None
        value = OmegaConf.select(self.config, f"hydra.sweeper.{key}", default=default)
        return _container(value)

    def _compose(self, point: list[str]) -> DictConfig:
        assert self.hydra_context is not None and self.config is not None
        return self.hydra_context.config_loader.load_sweep_config(self.config, list(point))

    def _compose_with_search_space(self, point: list[str]) -> tuple[DictConfig, list[str]]:
        """The point's config with its model's ``hparams_search`` file (unless one was chosen explicitly)."""
        from mmrec.errors import ConfigError

        assert self.hydra_context is not None
        cfg = self._compose(point)
        choices = OmegaConf.select(cfg, "hydra.runtime.choices", default={}) or {}
        if choices.get("hparams_search") is not None:
            return cfg, []
        model = choices.get("model") or OmegaConf.select(cfg, "model.name", default=None)
        options = self.hydra_context.config_loader.get_group_options("hparams_search")
        has_params = bool(_container(OmegaConf.select(cfg, "hydra.sweeper.params", default=None)))
        if model is not None and str(model) in options:
            extra = [("hparams_search=" if "hparams_search" in choices else "+hparams_search=") + str(model)]
            return self._compose(point + extra), extra
        if has_params:
            return cfg, []
        raise ConfigError(
            f"no search space for model {model!r}: add conf/hparams_search/{model}.yaml (format: "
            "mmrec/sweeps/space.py), choose one with hparams_search=<name> (available: "
            f"{', '.join(options) or 'none'}), or set hydra.sweeper.params"
        )

    # ------------------------------------------------------------------ sweep

    def sweep(self, arguments: list[str]) -> Any:
        mode = str(self._setting("mode", "tune")).lower()
        if mode == "grid":
            return self._plain_grid(arguments)
        if mode != "tune":
            from mmrec.errors import ConfigError

            raise ConfigError(f"hydra.sweeper.mode={mode!r}: choose tune (Optuna) or grid (every point once)")
        return self._tune(arguments)

    def _plain_grid(self, arguments: list[str]) -> Any:
        """Run every grid point once, like Hydra's basic sweeper (used by the repeat command).

        Unlike ``hydra/sweeper=basic`` it keeps this sweeper's config schema, so configs that set
        ``hydra.sweeper.*`` keys still compose; all jobs run even when some fail, then the failures are raised.
        """
        from mmrec.atomic_io import atomic_write_text
        from mmrec.credentials import redact
        from mmrec.errors import MMRecError
        from mmrec.sweeps import grid as grid_mod

        assert self.config is not None and self.hydra_context is not None and self.launcher is not None
        points = grid_mod.expand(arguments, self.hydra_context.config_loader, tuning=False)
        self.validate_batch_is_legal(points)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(sweep_dir / "multirun.yaml", redact(OmegaConf.to_yaml(self.config)))
        returns = list(self.launcher.launch(points, initial_job_idx=0))
        failed = [r for r in returns if r.status != JobStatus.COMPLETED]
        for r in failed:
            log.error("job %s failed: %s", list(r.overrides or []), r._return_value)
        if failed:
            raise MMRecError(f"{len(failed)} of {len(returns)} jobs failed (their errors are logged above)")
        return returns

    def _tune(self, arguments: list[str]) -> Any:
        from mmrec.errors import ConfigError
        from mmrec.sweeps import grid as grid_mod
        from mmrec.sweeps import naming, optimize, space, storage

        assert self.config is not None and self.hydra_context is not None
        root_setting = (
            self._setting("output_root")
            or OmegaConf.select(self.config, "paths.output_root", default=None)
            or "outputs"
        )
        root = Path(str(root_setting)).expanduser().resolve()
        url = self._hide_password(storage.resolve_url(self._setting("storage"), root))
        sampler = self._setting("sampler")
        pruner = self._setting("pruner")
        if pruner and pruner.get("_target_") in _NO_PRUNER:
            pruner = None
        n_trials = int(self._setting("n_trials", 20))
        direction = str(self._setting("direction", "maximize")).lower()
        if direction not in ("maximize", "minimize"):
            raise ConfigError(f"hydra.sweeper.direction={direction!r}: choose maximize or minimize")
        template = _container(self.config.hydra.sweeper, resolve=False).get("study_name")  # resolved per point

        points = grid_mod.expand(arguments, self.hydra_context.config_loader)
        plans = []
        seen: dict[str, list[str]] = {}
        for point in points:
            cfg, extra = self._compose_with_search_space(point)
            name = naming.check_name(
                str(OmegaConf.select(cfg, "hydra.sweeper.study_name"))
                if template is not None
                else naming.study_name(cfg)
            )
            if name in seen:
                raise ConfigError(
                    f"grid points {seen[name]} and {point} map to the same study {name!r}; a study is one "
                    "condition. Make hydra.sweeper.study_name depend on the keys you sweep"
                )
            seen[name] = point
            search = space.parse_space(_container(OmegaConf.select(cfg, "hydra.sweeper.params", default=None)))
            grid = space.parse_grid(_container(OmegaConf.select(cfg, "hydra.sweeper.grid", default=None)))
            budget = n_trials
            if optimize.uses_grid(sampler):
                search = space.grid_as_space(grid)
                budget = min(n_trials, space.grid_size(grid))
            pinned = grid_mod.override_keys(point) & (set(search.distributions) | set(search.fixed))
            if pinned:
                log.info("study %s: %s set on the command line, not searched", name, ", ".join(sorted(pinned)))
                search = search.without(pinned)
            if not search.distributions:
                log.warning("study %s: the search space is empty; every trial runs the same configuration", name)
            study_dir = root / name
            # sweep.prune=true in every trial: jobs report each epoch (curves in optuna-dashboard); whether a
            # trial stops early is up to the study's pruner (none → never)
            job_overrides = self._job_overrides(point + extra, name, url, study_dir)
            self._check_composes(job_overrides(0, search.placeholder()), name)
            seed = OmegaConf.select(cfg, "seed", default=None)
            attrs = {
                "mmrec:overrides": sorted(point),
                "mmrec:space": search.signature(),
                "mmrec:seed": seed,
                "mmrec:monitor": OmegaConf.select(cfg, "monitor", default=None),
                "mmrec:direction": direction,
                "mmrec:n_trials": budget,
                "mmrec:sampler": sampler,
                "mmrec:condition": naming.condition(cfg),
                "mmrec:output_dir": str(study_dir),
            }
            must_match = ("mmrec:space", "mmrec:seed") + (
                ("mmrec:overrides",) if self._setting("check_overrides", True) else ()
            )
            plan = optimize.StudyPlan(
                name=name,
                storage_url=url,
                n_trials=budget,
                space=search,
                direction=direction,
                n_jobs=int(self._setting("n_jobs", 1)),
                sampler=sampler,
                pruner=pruner,
                grid=grid if optimize.uses_grid(sampler) else None,
                attrs=attrs,
                must_match=must_match,
                heartbeat_interval=self._setting("heartbeat_interval", 60),
                grace_period=self._setting("grace_period"),
                max_retry=self._setting("max_retry", 1),
                max_consecutive_failures=self._setting("max_consecutive_failures", 5),
                run_dir_of=lambda n, d=study_dir: str(d / "trials" / str(n)),
            )
            plans.append((plan, study_dir, job_overrides))

        log.info(
            "mmrec_optuna: %d stud%s, %d trials each, storage %s",
            len(plans),
            "y" if len(plans) == 1 else "ies",
            n_trials,
            storage.display(url),
        )
        reports = []
        for plan, study_dir, job_overrides in plans:
            study_dir.mkdir(parents=True, exist_ok=True)
            self._save_multirun_yaml(study_dir)
            report = optimize.optimize(plan, lambda batch, d=study_dir, j=job_overrides: self._launch(batch, d, j))
            self._save_report(study_dir, report)
            log.info(
                "study %s: %s best %s = %s (trial %s)",
                plan.name,
                report["states"],
                direction,
                report["best_value"],
                report["best_trial"],
            )
            reports.append(report)
        return reports

    def _hide_password(self, url: str) -> str:
        """Move a password out of the URL into ``$MMREC_STORAGE`` (see :mod:`mmrec.credentials`) and out of
        every place Hydra or a tracker would copy it from (the recorded overrides, the config, ``sys.argv``);
        returns the redacted URL that trials receive."""
        import sys

        from mmrec import credentials

        assert self.config is not None
        if not credentials.has_password(url):
            return url
        redacted = credentials.hide_in_environment(url)
        with read_write(self.config), open_dict(self.config):
            hydra_overrides = OmegaConf.select(self.config, "hydra.overrides.hydra", default=None)
            if hydra_overrides is not None:
                self.config.hydra.overrides.hydra = [credentials.redact(str(o)) for o in hydra_overrides]
            if credentials.has_password(str(OmegaConf.select(self.config, "hydra.sweeper.storage", default=""))):
                self.config.hydra.sweeper.storage = redacted
        sys.argv[:] = [credentials.redact(a) for a in sys.argv]
        log.info(
            "mmrec_optuna: the storage password is kept in $%s for this sweep's trials, never written",
            credentials.ENV_VAR,
        )
        return redacted

    def _job_overrides(self, point: list[str], name: str, url: str, study_dir: Path) -> Any:
        from mmrec.sweeps.space import overrides_for, quote

        def build(number: int, params: dict[str, Any]) -> list[str]:
            return [
                *point,
                "role=trial",
                f"study={quote(name)}",
                f"sweep.storage={quote(url)}",
                f"sweep.study_name={quote(name)}",
                f"sweep.trial_number={number}",
                "sweep.prune=true",
                f"hydra.sweep.dir={quote(str(study_dir))}",
                f"hydra.sweep.subdir={quote(f'trials/{number}')}",
                *overrides_for(params),
            ]

        return build

    def _check_composes(self, overrides: list[str], name: str) -> None:
        from mmrec.errors import ConfigError

        try:
            self._compose(overrides)
        except Exception as e:
            raise ConfigError(
                f"study {name}: a trial's overrides do not compose ({e}); check the search-space "
                f"keys exist in the config. Overrides: {overrides}"
            ) from e

    def _launch(self, batch: Any, study_dir: Path, job_overrides: Any) -> list[Any]:
        assert self.launcher is not None and self.config is not None
        overrides = [job_overrides(number, params) for number, params in batch]
        with read_write(self.config.hydra), open_dict(self.config.hydra):  # launchers mkdir hydra.sweep.dir
            self.config.hydra.sweep.dir = str(study_dir)
        returns = self.launcher.launch(overrides, initial_job_idx=self._job_idx)
        self._job_idx += len(batch)
        return [self._outcome(ret) for ret in returns]

    @staticmethod
    def _outcome(ret: JobReturn) -> Any:
        import json
        import traceback

        import optuna
        from optuna.trial import TrialState

        from mmrec.sweeps.optimize import Outcome

        if ret.status == JobStatus.COMPLETED:
            value = ret._return_value
            try:
                return Outcome(TrialState.COMPLETE, value=float(value))
            except (TypeError, ValueError):
                return Outcome(TrialState.FAIL, error=f"the task returned {value!r}; expected a float")
        exc = ret._return_value
        if isinstance(exc, optuna.TrialPruned) or type(exc).__name__ == "TrialPruned":
            return Outcome(TrialState.PRUNED)
        if ret.working_dir:
            summary = Path(ret.working_dir) / "summary.json"
            try:
                if json.loads(summary.read_text()).get("status") == "pruned":
                    return Outcome(TrialState.PRUNED)
            except (OSError, ValueError):
                pass
        if isinstance(exc, BaseException):
            detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            log.error("job %s failed:\n%s", ret.overrides, detail)
            return Outcome(TrialState.FAIL, error=f"{type(exc).__name__}: {exc}")
        return Outcome(TrialState.FAIL, error=f"job status {ret.status}: {exc!r}")

    def _save_multirun_yaml(self, study_dir: Path) -> None:
        from mmrec.atomic_io import atomic_write_text
        from mmrec.credentials import redact

        assert self.config is not None
        atomic_write_text(study_dir / "multirun.yaml", redact(OmegaConf.to_yaml(self.config)))

    @staticmethod
    def _save_report(study_dir: Path, report: dict[str, Any]) -> None:
        import json

        from mmrec.atomic_io import atomic_write_text
        from mmrec.credentials import redact

        atomic_write_text(study_dir / "study.json", redact(json.dumps(report, indent=2, default=str)))
