"""Re-run a study's best configuration over several seeds (``role=repeat``), optionally on other conditions.

::

    python -m mmrec.sweeps.repeat --study NAME [--storage URL] [--seeds 5 | --seeds 1,2,3]
        [--transfer-to "knockout=text_noise" ...] [--script train.py] [-- <extra overrides>]

- Reads the study's best trial (validation objective) and the grid point's overrides stored with the study,
  then runs ``python train.py -m hydra.sweeper.mode=grid <study overrides> <best params> role=repeat
  seed=s1,s2,..``: a plain grid over seeds (like ``hydra/sweeper=basic``, but keeping the sweeper's schema so
  configs that set ``hydra.sweeper.*`` keys, such as experiment presets, still compose). Extra overrides after
  ``--`` are appended, e.g. ``hydra/launcher=joblib hydra.launcher.n_jobs=5``, or
  ``hydra/launcher=submitit_slurm`` to send the seeds to SLURM.
- Seeds: ``--seeds N`` takes the first N positive integers other than the tuning seed (default 5); a list
  must not contain the tuning seed. Only ``seed`` changes: the split seed (``seeds.split``) stays, so the
  per-user test results of all seeds and conditions pair up.
- Output: ``<output_root>/<study>/repeats/seed=<s>/`` (``summary.json`` with ``role: repeat``, test metrics,
  per-user metrics) and ``repeats/repeat.json`` (what was run, from which trial).
- Transfer repeats (``--transfer-to``): the same best parameters, unchanged, on another condition (usually a
  knockout of the tuned full-feature condition): overrides replaced key by key, ``transfer_from=<source study>``,
  ``study=<the target condition's name>``, written to ``<output_root>/<target study>/transfer_from=<source
  study>/seed=<s>/``. A report can then tell "the content is useless" (the transfer repeat is as good as the
  re-tuned knockout) from "the knockout was re-tuned around" (only the re-tuned one holds up).
- Seeds whose ``summary.json`` already says ``completed`` are skipped, so an interrupted repeat resumes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from mmrec.atomic_io import atomic_write_text
from mmrec.errors import ConfigError
from mmrec.sweeps.space import format_value, quote
from mmrec.sweeps.storage import display, open_storage, resolve_url

DEFAULT_SEEDS = 5


def choose_seeds(spec: str | int, tuning_seed: int | None) -> list[int]:
    """``"5"`` → five seeds other than the tuning seed; ``"1,2,3"`` → those (never the tuning seed)."""
    text = str(spec).strip()
    if "," not in text and text.isdigit():
        count = int(text)
        if count < 1:
            raise ConfigError(f"--seeds {spec}: need at least one seed")
        return list(itertools.islice((s for s in itertools.count(1) if s != tuning_seed), count))
    seeds = [int(s) for s in text.split(",") if s.strip()]
    if tuning_seed is not None and tuning_seed in seeds:
        raise ConfigError(f"--seeds {spec} contains the tuning seed {tuning_seed}; a repeat needs fresh seeds")
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ConfigError(f"--seeds {spec}: give distinct seeds")
    return seeds


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def merge_overrides(base: list[str], changes: list[str]) -> list[str]:
    """``base`` with each override of ``changes`` replacing the one with the same key (or appended)."""
    replaced = {_key(c) for c in changes}
    return [o for o in base if _key(o) not in replaced] + list(changes)


def target_study_name(config_dir: Path, config_name: str, overrides: list[str]) -> str:
    """The default study name of the condition these overrides make (composes the app's config)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from mmrec.sweeps.naming import study_name

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir.resolve()), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    return study_name(cfg)


def completed_seeds(out_dir: Path, seeds: list[int]) -> list[int]:
    done = []
    for seed in seeds:
        path = out_dir / f"seed={seed}" / "summary.json"
        try:
            if json.loads(path.read_text()).get("status") == "completed":
                done.append(seed)
        except (OSError, ValueError):
            pass
    return done


def plan(args: argparse.Namespace, extra: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """What to run: one entry per condition (the study's own, then each transfer target)."""
    import optuna

    url = resolve_url(args.storage, args.output_root)
    storage = open_storage(url)
    try:
        study = optuna.load_study(study_name=args.study, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise ConfigError(f"no study {args.study!r} in {display(url)}; studies there: {names or 'none'}") from None
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ConfigError(f"study {args.study!r} has no completed trial yet; nothing to repeat")
    best = study.best_trial
    attrs = study.user_attrs
    tuning_seed = attrs.get("mmrec:seed")
    seeds = choose_seeds(args.seeds, tuning_seed)
    base = list(attrs.get("mmrec:overrides", []))
    params = [f"{k}={format_value(v)}" for k, v in best.params.items()]
    study_dir = Path(attrs.get("mmrec:output_dir") or Path(args.output_root).resolve() / args.study)
    source = {
        "study": args.study,
        "storage": display(url),
        "best_trial": best.number,
        "best_value": best.value,
        "params": best.params,
        "tuning_seed": tuning_seed,
        "study_overrides": base,
    }
    runs = [{"study": args.study, "overrides": base, "out_dir": study_dir / "repeats", "transfer_from": None}]
    script = Path(args.script)
    config_dir = Path(args.config_dir) if args.config_dir else script.resolve().parent / "conf"
    for target in args.transfer_to or []:
        overrides = merge_overrides(base, shlex.split(target))
        name = target_study_name(config_dir, args.config_name, overrides + extra)
        if name == args.study:
            raise ConfigError(f"--transfer-to {target!r} gives the source condition itself ({name})")
        runs.append(
            {
                "study": name,
                "overrides": overrides,
                "out_dir": study_dir.parent / name / f"transfer_from={args.study}",
                "transfer_from": args.study,
            }
        )
    for run in runs:
        run["seeds"] = [s for s in seeds if s not in completed_seeds(run["out_dir"], seeds)]
        run["command"] = [
            sys.executable,
            str(script),
            "-m",
            "hydra/sweeper=mmrec_optuna",
            "hydra.sweeper.mode=grid",
            *run["overrides"],
            *params,
            *extra,
            "role=repeat",
            f"study={quote(run['study'])}",
            f"transfer_from={'null' if run['transfer_from'] is None else quote(run['transfer_from'])}",
            "sweep.storage=null",
            "sweep.study_name=null",
            "sweep.trial_number=null",
            "sweep.prune=false",
            f"seed={','.join(str(s) for s in run['seeds'])}",
            f"hydra.sweep.dir={quote(str(run['out_dir']))}",
            "hydra.sweep.subdir='seed=${seed}'",
        ]
    return runs, {**source, "seeds": seeds}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m mmrec.sweeps.repeat", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--study", required=True, help="the tuned study (python -m mmrec.sweeps.storage lists them)")
    parser.add_argument("--storage", default=None, help="storage URL (default: <output-root>/optuna-journal.log)")
    parser.add_argument("--seeds", default=str(DEFAULT_SEEDS), help="a count (default 5) or a list such as 1,2,3")
    parser.add_argument(
        "--transfer-to",
        action="append",
        metavar="OVERRIDES",
        help="also run the best params on this condition, e.g. 'knockout=text_noise' (repeatable)",
    )
    parser.add_argument("--no-self", action="store_true", help="only the transfer repeats, not the study's own")
    parser.add_argument("--script", default="train.py", help="the Hydra app (default: train.py)")
    parser.add_argument("--config-dir", default=None, help="its config folder (default: <script dir>/conf)")
    parser.add_argument("--config-name", default="train")
    parser.add_argument("--output-root", default="outputs")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    if not Path(args.script).exists():
        raise ConfigError(f"--script {args.script}: not found (run from the repository root or pass --script)")
    runs, source = plan(args, extra)
    if args.no_self:
        runs = runs[1:]
    status = 0
    for run in runs:
        label = run["study"] + (f" (transfer from {run['transfer_from']})" if run["transfer_from"] else "")
        if not run["seeds"]:
            print(f"[repeat] {label}: every seed already completed in {run['out_dir']}")
            continue
        print(f"[repeat] {label}: seeds {run['seeds']} → {run['out_dir']}")
        print("[repeat] " + shlex.join(run["command"]), flush=True)
        if args.dry_run:
            continue
        run["out_dir"].mkdir(parents=True, exist_ok=True)
        manifest = {
            **source,
            "target_study": run["study"],
            "transfer_from": run["transfer_from"],
            "command": run["command"],
        }
        atomic_write_text(run["out_dir"] / "repeat.json", json.dumps(manifest, indent=2, default=str))
        code = subprocess.call(run["command"])
        missing = [s for s in source["seeds"] if s not in completed_seeds(run["out_dir"], source["seeds"])]
        if code != 0 or missing:
            print(
                f"[repeat] {label}: seeds {missing} did not complete (exit {code}); run the same command to retry them",
                file=sys.stderr,
            )
            status = 1
    return status


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
