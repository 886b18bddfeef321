"""Process settings: the allocator tuning takes effect on glibc and can be switched off."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = "from mmrec.runtime import keep_freed_memory; print(keep_freed_memory())"


def _run(env_value: str | None) -> str:
    import os

    env = dict(os.environ)
    env.pop("MMREC_KEEP_FREED_MEMORY", None)
    if env_value is not None:
        env["MMREC_KEEP_FREED_MEMORY"] = env_value
    return subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_keep_freed_memory_applies_on_glibc_and_can_be_disabled() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert _run(None) == "True"
    assert _run("0") == "False"
