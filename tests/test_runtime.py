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
    return subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_keep_freed_memory_applies_on_glibc_and_can_be_disabled() -> None:
    assert _run(None) == "True"
    assert _run("0") == "False"


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="flush-to-zero is an x86 setting")
def test_denormals_flush_to_zero_in_worker_threads_too() -> None:
    out = subprocess.run([sys.executable, "-c", DENORMAL], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_cpu_switches_apply_on_the_cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a GPU run neither CPU switch is applied; on the CPU (or 'auto' without CUDA) both are asked for."""
    import torch

    from mmrec import runtime

    calls: list[str] = []
    monkeypatch.setattr(runtime, "keep_freed_memory", lambda: calls.append("keep") or True)
    monkeypatch.setattr(runtime, "flush_denormals", lambda: calls.append("flush") or True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    applied = runtime.configure("gpu", deterministic=True)
    assert calls == [] and applied == {
        "keep_freed_memory": False,
        "flush_denormals": False,
        "cublas_workspace_config": True,
    }
    assert runtime.configure("cpu") == {"keep_freed_memory": True, "flush_denormals": True}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.resolve_accelerator("auto") == "cpu" and runtime.resolve_accelerator("gpu") == "cpu"
    assert runtime.configure("auto") == {"keep_freed_memory": True, "flush_denormals": True}
    assert calls == ["keep", "flush", "keep", "flush"]


def test_cuda_determinism_sets_the_cublas_workspace_and_keeps_a_given_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from mmrec.runtime import cuda_determinism

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    assert cuda_determinism(False) is False and "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    assert cuda_determinism(True) is True and os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    with pytest.warns(UserWarning, match="trainer.deterministic=true"):
        assert cuda_determinism("warn") is True
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"  # the user's choice is kept
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":0:0")
    with pytest.warns(UserWarning, match="may differ from run to run"):
        assert cuda_determinism(True) is False
