"""What a run prints: quiet by default, everything with ``verbose=true``.

Quiet means: Lightning's informational lines ("GPU available: ...", tips about optional packages) and a short
list of warnings known to be harmless here are filtered out (each by its category and message, never all
warnings), one progress bar per run shows the epoch, the training loss and the monitored validation metric,
and each finished job of a multirun prints one line. Errors mmrec raises on purpose (``DataError``,
``ConfigError``) reach the user as ``mmrec: error: <file or key>: <problem>`` and a hint line, exit code 2;
``HYDRA_FULL_ERROR=1`` gives the full stack trace instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TextIO, cast

from mmrec.errors import DataError, MMRecError, find_mmrec_error

EXIT_USAGE = 2
FULL_ERROR_ENV = "HYDRA_FULL_ERROR"
VERBOSE_ENV = "MMREC_VERBOSE"

# (category, regex on the message): warnings that say nothing a user of mmrec can act on.
HARMLESS_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    # mmrec's eval loaders are sized iterables on purpose (one block of users per step).
    (UserWarning, r"(?s).*Your `IterableDataset` has `__len__` defined"),
    # the datamodule does its own batching and shuffling in the main process.
    (UserWarning, r"(?s).*does not have many workers which may be a bottleneck"),
    (UserWarning, r"(?s).*The number of training batches \(\d+\) is smaller than the logging interval"),
    # trainer.deterministic=warn on CPU: ops without a deterministic kernel are reported, results are still
    # seeded; see README "Reproducibility".
    (UserWarning, r"(?s).*does not have a deterministic implementation, but you set"),
    # Lightning's checkpoint folder check: resumed runs write into their own folder by design.
    (UserWarning, r"(?s).*Checkpoint directory .* exists and is not empty"),
    # third-party deprecations raised inside Lightning, torch or wandb, not in mmrec's code.
    (
        DeprecationWarning,
        r"(?s).*(pkg_resources|distutils|jsonschema\.RefResolver|co_lnotab|datetime\.datetime\.utcnow)",
    ),
    (FutureWarning, r"(?s).*`torch\.cuda\.amp\.\w+\(args\.\.\.\)` is deprecated"),
    # Lightning 2.6 builds torch pytree LeafSpec objects, deprecated in torch 2.10+.
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    # torch sparse: mmrec builds its sparse graphs from checked indices (mmrec.nn / mmrec.data.graphs).
    (UserWarning, r"Sparse invariant checks are implicitly disabled"),
    (UserWarning, r"Sparse CSR tensor support is in beta state"),
)
# Loggers whose INFO lines are Lightning's banner ("GPU available: False ...", tips about litlogger/litmodels).
CHATTY_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric")


def is_verbose(cfg: Any | None = None) -> bool:
    """``verbose=true`` in the config, or ``MMREC_VERBOSE=1`` in the environment."""
    if os.environ.get(VERBOSE_ENV, "").lower() in ("1", "true", "yes"):
        return True
    return bool(cfg is not None and cfg.get("verbose", False))


_installed: list[Any] = []  # the warning filters quiet() added (removed again by quiet(verbose=True))
_installed_env: dict[str, str] = {}  # environment variables quiet() set


def quiet(verbose: bool = False) -> None:
    """Filter the known-harmless warnings, Lightning's banner and W&B's; ``verbose`` undoes it all."""
    if verbose:
        # typeshed types warnings.filters as a Sequence; it is a list, edited in place as the warnings module does
        cast(list[Any], warnings.filters)[:] = [f for f in warnings.filters if f not in _installed]
        getattr(warnings, "_filters_mutated", lambda: None)()  # drop the per-module "already shown" caches
        _installed.clear()
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)
        if _installed_env.pop("WANDB_SILENT", None):
            os.environ.pop("WANDB_SILENT", None)
        return
    # (re)insert at the front each call: filters added since (e.g. "always") would otherwise shadow ours
    cast(list[Any], warnings.filters)[:] = [f for f in warnings.filters if f not in _installed]
    _installed.clear()
    for category, message in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
        _installed.append(warnings.filters[0])
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if "WANDB_SILENT" not in os.environ:  # W&B's banner and run summary (the metrics are in summary.json)
        os.environ["WANDB_SILENT"] = "true"
        _installed_env["WANDB_SILENT"] = "true"


def job_line(record: dict[str, Any]) -> str:
    """The one line a finished job of a multirun prints."""
    c = record["condition"]
    ko = record["notes"].get("knockout", {}).get("label") or "none"
    monitor = str(record["monitor"]).split("/", 1)[-1]
    val = record["metrics"]["val"].get(monitor)
    test = record["metrics"]["test"].get(monitor)
    parts = [f"{c['model']} on {c['dataset']}, knockout {ko}, seed {record['seeds']['seed']}:"]
    if val is not None:
        parts.append(f"val {monitor} {val:.4f} (epoch {record['best_epoch']})")
    if test is not None:
        parts.append(f"test {monitor} {test:.4f}")
    parts.append(f"{record['timing'].get('total', 0.0):.0f}s")
    return " ".join(parts) + f"  → {record['paths']['run_dir']}"


def error_block(error: MMRecError) -> str:
    """``mmrec: error: <file or key>: <problem>`` and a hint line."""
    if isinstance(error, DataError):
        text, hint = f"{error.path}: {error.problem}", error.fix
        hint = hint or "check the file; `python -m mmrec.prepare --help` lists the data sets it can (re)build"
    else:
        text = str(error)
        hint = getattr(error, "hint", None) or (
            "`python train.py --cfg job` prints the composed config; README.md lists the groups and keys"
        )
    lines = [f"mmrec: error: {text}", f"hint: {hint}"]
    record = getattr(error, "run_record", None)
    if record:
        lines.append(f"run record: {record}")
    lines.append(f"({FULL_ERROR_ENV}=1 shows the stack trace)")
    return "\n".join(lines)


_full_error: list[bool] = []  # whether the user asked for HYDRA_FULL_ERROR=1 (run_cli sets it for itself)


def full_error_requested() -> bool:
    return _full_error[-1] if _full_error else os.environ.get(FULL_ERROR_ENV) == "1"


def hydra_mode() -> str | None:
    """``RUN`` or ``MULTIRUN`` inside a Hydra job, None outside one."""
    try:
        from hydra.core.hydra_config import HydraConfig

        mode = HydraConfig.get().mode
        return mode.name if mode is not None else None
    except Exception:  # noqa: BLE001 - not under Hydra (API use)
        return None


@contextlib.contextmanager
def clean_errors(stream: TextIO | None = None) -> Iterator[None]:
    """Inside a single Hydra job: an mmrec error prints :func:`error_block` and exits with code 2 before Hydra
    can wrap it. In a multirun the error propagates (the sweeper records the failed job; :func:`run_cli`
    prints the block if it ends the sweep)."""
    try:
        yield
    except Exception as e:
        error = find_mmrec_error(e)
        if error is None or full_error_requested() or hydra_mode() != "RUN":
            raise
        print(error_block(error), file=stream or sys.stderr, flush=True)
        raise SystemExit(EXIT_USAGE) from None


def run_cli(entry: Callable[[], Any], stream: TextIO | None = None) -> int:
    """Run a Hydra entry point; an mmrec error anywhere in the exception chain becomes :func:`error_block` and
    exit code 2 (unless ``HYDRA_FULL_ERROR=1``, which re-raises it with its trace)."""
    full = os.environ.get(FULL_ERROR_ENV) == "1"
    _full_error.append(full)
    os.environ[FULL_ERROR_ENV] = "1"  # Hydra re-raises instead of printing its wrapper; we print below
    try:
        entry()
    except Exception as e:
        error = find_mmrec_error(e)
        if full:
            raise
        if error is not None:
            print(error_block(error), file=stream or sys.stderr)
            return EXIT_USAGE
        from hydra.errors import CompactHydraException

        if isinstance(e, CompactHydraException):  # a bad override or config group: Hydra's own short message
            cause = f"\n{e.__cause__}" if e.__cause__ is not None else ""
            print(
                f"{e}{cause}\n\nSet the environment variable {FULL_ERROR_ENV}=1 for a complete stack trace.",
                file=stream or sys.stderr,
            )
            return 1
        raise
    finally:
        _full_error.pop()
        if not full:
            os.environ.pop(FULL_ERROR_ENV, None)
    return 0
