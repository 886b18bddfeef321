"""Command-line overrides → the grid of conditions a tuning sweep runs one study each for.

Comma lists (``model=freedom,vbpr``), ``range(...)`` and ``choice(...)`` expand as with Hydra's basic sweeper
(a cartesian product); they never become Optuna choices. ``interval(...)`` on the command line, a list of
seeds, and keys the sweeper sets itself are errors with a hint.
"""

from __future__ import annotations

import itertools
from typing import Any

from mmrec.errors import ConfigError

# Keys the sweeper sets on every job; a user value would be silently replaced, so it is refused instead.
RESERVED = (
    "role",
    "study",
    "transfer_from",
    "sweep",
    "sweep.storage",
    "sweep.study_name",
    "sweep.trial_number",
    "sweep.prune",
)

SEED_HINT = (
    "a tuning sweep uses one seed per study (the config's `seed`, recorded with the study). To run the best "
    "configuration of a study over several seeds, use the repeat command:\n"
    "    python -m mmrec.sweeps.repeat --study <study name> --seeds 5\n"
    "and for a plain grid over seeds without tuning: python train.py -m hydra.sweeper.mode=grid seed=1,2,3"
)


def expand(arguments: list[str], config_loader: Any = None, tuning: bool = True) -> list[list[str]]:
    """One list of overrides per grid point, in the basic sweeper's order (``tuning``: refuse seed lists,
    command-line intervals and the keys the sweeper sets; otherwise only intervals are refused)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create(config_loader=config_loader)
    lists: list[list[str]] = []
    for override in parser.parse_overrides(arguments):
        key = override.get_key_element()
        name = override.key_or_group
        if tuning and (name in RESERVED or name.startswith("sweep.")):
            raise ConfigError(f"'{override.input_line}': the sweeper sets `{name}` for every job; leave it out")
        if override.is_sweep_override():
            if tuning and name == "seed":
                raise ConfigError(f"'{override.input_line}' in a tuning sweep: {SEED_HINT}")
            if not override.is_discrete_sweep():
                raise ConfigError(
                    f"'{override.input_line}': intervals belong in the search space (hydra.sweeper.params, "
                    "conf/hparams_search/<model>.yaml), not in the command-line grid"
                    if tuning
                    else f"'{override.input_line}': a plain grid takes lists, not intervals"
                )
            lists.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            lists.append([f"{key}={override.get_value_element_as_str()}"])
    return [list(point) for point in itertools.product(*lists)]


def override_keys(point: list[str]) -> set[str]:
    """The config keys a grid point's overrides set (``+``/``++`` prefixes and packages stripped)."""
    keys = set()
    for item in point:
        key = item.split("=", 1)[0].lstrip("+~")
        keys.add(key.split("@", 1)[0])
    return keys
