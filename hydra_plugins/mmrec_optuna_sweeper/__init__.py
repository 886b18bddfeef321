"""mmrec's Optuna sweeper for Hydra: one Optuna study per grid point, ask-and-tell on Optuna ≥ 4.

Select it with ``hydra/sweeper=mmrec_optuna`` (``conf/train.yaml`` does by default); ``hydra/sweeper=basic``
brings back Hydra's plain grid.

Why our own plugin and not ``hydra-optuna-sweeper`` (1.3.0, the last release):

- it runs *one* study per multirun and turns command-line comma lists into Optuna choices, so
  ``-m model=freedom,vbpr knockout=none,text_noise`` would tune one study in which the model is a
  hyper-parameter. We need the basic sweeper's grid semantics with one study per grid point, each with the
  same budget, sampler seed and search space (a fair comparison of conditions);
- it declares ``optuna<3`` (it happens to run on Optuna 5, but pip would downgrade Optuna to install it), and
  it drives ``study.optimize``-style batches with no resume-by-budget, no shared-storage worker protocol and no
  heartbeats for journal storages.

Launchers (each batch holds ``hydra.sweeper.n_jobs`` trials; settings: ``config.py`` next to this file):

- sequential (Hydra's basic launcher, the default): one trial after another in the sweeper's process.
- ``hydra/launcher=joblib hydra.launcher.n_jobs=4 hydra.sweeper.n_jobs=4``: four trials at a time in local
  worker processes (``hydra-joblib-launcher``, a dependency). Mind memory: each trial loads its data.
- SLURM: ``pip install hydra-submitit-launcher``, then ``hydra/launcher=submitit_slurm
  hydra.launcher.partition=<p> hydra.launcher.gpus_per_node=1 hydra.launcher.timeout_min=240
  hydra.sweeper.n_jobs=8``: every batch becomes 8 SLURM jobs; the sweeper waits for them, then asks for more.
- Many machines without a shared launcher: start the same command on each one with a shared storage
  (``MMREC_STORAGE=postgresql://user:pass@host/db``, see :mod:`mmrec.credentials`); every process is a worker of the same
  studies and together they run exactly ``n_trials`` per study (:mod:`mmrec.sweeps.storage`).

This plugin keeps the keys users know (``hydra.sweeper.n_trials``, ``.storage``, ``.study_name``,
``.sampler``, ``.pruner``, ``.params``, ``.n_jobs``, ``.direction``) and uses Optuna's ask-and-tell API with
the configured Hydra launcher. The work is done by :mod:`mmrec.sweeps` (see :mod:`mmrec.sweeps.optimize`,
:mod:`mmrec.sweeps.storage`); Hydra imports every module of this package at start-up, so nothing heavy is
imported here.
"""
