"""Load on a shared study: W workers × one study of N one-epoch trials, against a journal file or PostgreSQL.

    python benchmarks/sweep_load.py [--workers 8] [--trials 40] [--storage URL]   # default: a journal file

Trials are the sweeper tests' toy app (tests/sweeps/toy_app, ``epochs=1``: no training, so the figure is the
storage protocol's throughput: locks, asks, tells, heartbeats). Checks, then prints: exactly N trials, numbers
0..N-1 without duplicates, all complete, one run folder each, and a journal that Optuna reads back whole;
then trials per second (wall time from the first worker's start to the last worker's end).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "tests" / "sweeps" / "toy_app" / "toy_train.py"
STUDY = "toy__quad__none__ko=none@train__freeze=default__protocol=default"


def run(workers: int, trials: int, storage: str | None, work: Path) -> dict[str, float | int | str]:
    sys.path.insert(0, str(REPO))
    import optuna
    from optuna.trial import TrialState

    from mmrec.sweeps.storage import display, journal_path, open_storage, resolve_url

    url = resolve_url(storage, work / "outputs")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "disabled",
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    cmd = [
        sys.executable,
        str(TOY),
        "-m",
        f"hydra.sweeper.storage={url}",
        f"hydra.sweeper.n_trials={trials}",
        "hydra/sweeper/pruner=none",
        "epochs=1",
    ]
    start = time.perf_counter()
    logs = [open(work / f"worker{i}.log", "w") for i in range(workers)]  # noqa: SIM115
    procs = [subprocess.Popen(cmd, cwd=work, env=env, stdout=f, stderr=subprocess.STDOUT) for f in logs]
    codes = [p.wait(timeout=1800) for p in procs]
    wall = time.perf_counter() - start
    for f in logs:
        f.close()
    if any(codes):
        raise SystemExit(f"worker exit codes {codes}; logs in {work}")
    study = optuna.load_study(study_name=STUDY, storage=open_storage(url))  # reads the whole journal back
    got = study.get_trials(deepcopy=False)
    numbers = [t.number for t in got]
    taken = [(work / f"worker{i}.log").read_text().count("launching trial(s)") for i in range(workers)]
    folders = sorted(int(p.name) for p in (work / "outputs" / STUDY / "trials").iterdir())
    journal = journal_path(url)
    bad_lines = 0
    if journal is not None:  # every record of the journal is one whole JSON object
        for line in journal.read_text().splitlines():
            try:
                json.loads(line)
            except ValueError:
                bad_lines += 1
    result = {
        "storage": display(url),
        "workers": workers,
        "trials": len(got),
        "duplicates": len(numbers) - len(set(numbers)) + max(0, sum(taken) - trials),
        "complete": sum(t.state == TrialState.COMPLETE for t in got),
        "corrupt_journal_lines": bad_lines,
        "workers_that_ran_trials": sum(1 for n in taken if n),
        "wall_s": round(wall, 1),
        "trials_per_s": round(trials / wall, 2),
    }
    assert sorted(numbers) == list(range(trials)) and folders == list(range(trials)), (numbers, folders)
    assert result["duplicates"] == 0 and result["complete"] == trials and bad_lines == 0, result
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--storage", default=None, help="storage URL (default: a fresh journal file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mmrec-load-") as tmp:
        print(f"load average before: {os.getloadavg()}")
        print(run(args.workers, args.trials, args.storage, Path(tmp)))
        print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
