"""The whole knockout study of one dataset in one command: tune every model × condition, then repeat.

::

    python -m mmrec.sweeps.study experiment=knockout_study dataset=tiktok [hydra.sweeper.n_trials=20 ...]
    python -m mmrec.report outputs                       # then: tables, tests, plots

The ``knockout_study`` block of the composed config (``conf/experiment/knockout_study.yaml``) says what runs:

- ``models``: the recommenders;
- ``conditions``: ``full`` (all modalities real), ``each_only`` (for every modality *m* of the dataset: every
  other modality knocked out with ``only_strategy``, i.e. "m alone"), ``each_knocked`` (only *m* knocked out),
  or ``all_<strategy>`` (every modality knocked out), or any explicit spec such as ``audio:shuffle``;
- ``seeds``: repeats per tuned condition (fresh seeds, the split seed unchanged);
- ``transfer``: also apply the full condition's best hyper-parameters unchanged to every knockout condition.

Step 1 runs ``train.py -m model=<models> knockout=none knockout.spec=<conditions> <your overrides>`` through the
Optuna sweeper (one study per grid point, same budget and sampler seed for all); step 2 runs
``python -m mmrec.sweeps.repeat`` for each study. Both steps resume: re-running the command only does what is
missing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from mmrec import credentials
from mmrec.confdict import to_dict
from mmrec.config import available_modalities
from mmrec.errors import ConfigError
from mmrec.sweeps import repeat

REPO_CONF = Path(__file__).resolve().parents[2] / "conf"


def condition_specs(conditions: list[str], modalities: list[str], only_strategy: str = "noise") -> dict[str, str]:
    """Condition labels → knockout specs in the ``+`` form (no quoting needed in Hydra overrides)."""
    specs: dict[str, str] = {}
    for c in conditions:
        if c == "full":
            specs["full"] = "none"
        elif c == "each_only":
            for m in modalities:
                specs[f"{m}_only"] = f"all:{only_strategy}+{m}:keep" if len(modalities) > 1 else "none"
        elif c == "each_knocked":
            for m in modalities:
                specs[f"no_{m}"] = f"{m}:{only_strategy}"
        elif c.startswith("all_"):
            specs[c] = f"all:{c[4:]}"
        elif ":" in c:
            specs[c] = c.replace(",", "+")
        else:
            raise ConfigError(
                f"knockout_study.conditions: unknown condition {c!r}; use full, each_only, "
                "each_knocked, all_<strategy> or a spec such as 'audio:shuffle'"
            )
    return dict((k, v) for k, v in specs.items() if k == "full" or v != "none")


def plan(overrides: list[str], config_dir: Path = REPO_CONF) -> dict:
    with initialize_config_dir(str(config_dir), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    storage = cfg.hydra.sweeper.get("storage")
    output_root = cfg.hydra.sweeper.get("output_root") or cfg.paths.output_root
    study = cfg.get("knockout_study")
    if study is None:
        raise ConfigError("no knockout_study block: add experiment=knockout_study (or your own experiment)")
    study = to_dict(study, resolve=True)
    specs = condition_specs(list(study["conditions"]), available_modalities(cfg), study.get("only_strategy", "noise"))
    models = list(study["models"])
    sweep = [
        sys.executable,
        "train.py",
        "-m",
        *overrides,
        f"model={','.join(models)}",
        "knockout=none",
        f"knockout.spec={','.join(specs.values())}",
    ]
    names = {}
    for m in models:
        for label, spec in specs.items():
            point = [*overrides, f"model={m}", "knockout=none", f"knockout.spec={spec}"]
            names[(m, label)] = (repeat.target_study_name(config_dir, "train", point), spec)
    if storage:  # a password goes to $MMREC_STORAGE (inherited by the commands below), never onto a command line
        storage = credentials.hide_in_environment(str(storage))
    location = ["--output-root", str(output_root)] + (["--storage", str(storage)] if storage else [])
    return {
        "sweep": sweep,
        "names": names,
        "location": location,
        "specs": specs,
        "models": models,
        "seeds": int(study["seeds"]),
        "transfer": bool(study.get("transfer", False)),
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    dry = "--dry-run" in argv
    overrides = [a for a in argv if a != "--dry-run"]
    p = plan(overrides)
    print("[study] tuning: " + credentials.redact(" ".join(p["sweep"])), flush=True)
    if not dry and subprocess.call(p["sweep"]) != 0:
        print("[study] some trials failed; repeats use each study's best completed trial", file=sys.stderr)
    status = 0
    for m in p["models"]:
        full_name = p["names"][(m, "full")][0] if (m, "full") in p["names"] else None
        for label in p["specs"]:
            name = p["names"][(m, label)][0]
            args = ["--study", name, "--seeds", str(p["seeds"]), *p["location"]]
            if dry:
                args.append("--dry-run")
            print(f"[study] repeats of {m} / {label}: {name}", flush=True)
            try:
                status |= repeat.main(args)
            except ConfigError as e:
                print(f"[study] {name}: {e}", file=sys.stderr)
                status = 1
        if p["transfer"] and full_name is not None:
            targets = [f"knockout.spec={spec}" for label, spec in p["specs"].items() if label != "full"]
            args = ["--study", full_name, "--seeds", str(p["seeds"]), "--no-self", *p["location"]]
            for t in targets:
                args += ["--transfer-to", t]
            if dry:
                args.append("--dry-run")
            try:
                status |= repeat.main(args)
            except ConfigError as e:
                print(f"[study] transfer from {full_name}: {e}", file=sys.stderr)
                status = 1
    return status


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
