"""Process settings: the allocator tuning takes effect on glibc and can be switched off."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

CHECK = "from mmrec.runtime import keep_freed_memory; print(keep_freed_memory())"
DENORMAL = (
    "import torch; from mmrec.runtime import configure; configure(); torch.set_num_threads(2); "
    "x = torch.full((256, 256), 1e-39); print(float((x @ torch.eye(256)).abs().max()) == 0.0)"
)


def _run(env_value: str | None) -> str:
    import os

    env = dict(os.environ)
    env.pop("MMREC_KEEP_FREED_MEMORY", None)
    if env_value is not None:
        env["MMREC_KEEP_FREED_MEMORY"] = env_value
    return subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_keep_freed_memory_applies_on_glibc_and_can_be_disabled() -> None:
    assert _run(None) == "True"
    assert _run("0") == "False"


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="flush-to-zero is an x86 setting")
def test_denormals_flush_to_zero_in_worker_threads_too() -> None:
    out = subprocess.run([sys.executable, "-c", DENORMAL], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
