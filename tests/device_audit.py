"""Finding device bugs without a GPU.

Two checks, both usable on a CPU-only machine:

- :class:`DeviceAudit` (a ``TorchFunctionMode``): while active, every tensor *factory* called from mmrec code
  (``torch.zeros``, ``arange``, ``rand``, ``tensor``, ...) must name its device, and that device must be the
  model's; ``torch.from_numpy`` (always a CPU tensor), a random generator on another device than the model's, and
  ``.numpy()`` are recorded as violations too. On CPU a factory without ``device=`` gives a CPU tensor, which is
  right by accident; on CUDA the same line gives a CPU tensor next to CUDA ones (an error, or a silent host
  round-trip), so the audit treats "no device" as the bug it becomes there. Host synchronisations made from mmrec
  code (``.item()``, ``.tolist()``, ``.cpu()``, ``bool()``/``int()``/``float()`` of a tensor) are recorded
  separately in ``syncs``: on a GPU each stalls the host until the device catches up.
- :func:`stray_tensors`: moves a model to the ``meta`` device (a real second device that allocates nothing) and
  lists every tensor held by a module attribute that did not move with it: a derived tensor kept as a plain
  attribute instead of a buffer stays on the CPU when a Trainer moves the model to a GPU.

Only calls whose nearest caller outside torch is a file under ``mmrec/`` count: test code may build its inputs
as it likes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

MMREC = Path(__file__).resolve().parents[1] / "mmrec"
TORCH = Path(torch.__file__).resolve().parent
_FACTORIES = _device_constructors()
# factories whose device follows their tensor inputs when none is named (sparse constructors, as_tensor of a
# tensor); they are fine whenever their inputs are on the right device
_FOLLOWS_INPUTS = {
    torch.sparse_coo_tensor,
    torch.sparse_csr_tensor,
    torch.sparse_csc_tensor,
    torch.sparse_bsr_tensor,
    torch.sparse_bsc_tensor,
    torch.sparse_compressed_tensor,
    torch.as_tensor,
    torch.asarray,
    torch.tensor,
}
_SYNCS = {
    torch.Tensor.item: "item",
    torch.Tensor.tolist: "tolist",
    torch.Tensor.cpu: "cpu",
    torch.Tensor.__bool__: "bool",
    torch.Tensor.__int__: "int",
    torch.Tensor.__float__: "float",
    torch.Tensor.__index__: "index",
}


@dataclass(frozen=True)
class Finding:
    where: str  # "mmrec/models/x.py:42 (function)"
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def _caller(roots: tuple[Path, ...]) -> str | None:
    """``file:line (function)`` of the nearest frame outside torch and this file, if it is under ``roots``."""
    frame = sys._getframe(2)
    here = Path(__file__).resolve()
    while frame is not None:
        path = Path(frame.f_code.co_filename).resolve()
        if path != here and TORCH not in path.parents:
            if any(path == root or root in path.parents for root in roots):
                return f"{path.relative_to(MMREC.parent)}:{frame.f_lineno} ({frame.f_code.co_name})"
            return None
        frame = frame.f_back
    return None


def _has_tensor(values: Any) -> bool:
    return any(isinstance(v, torch.Tensor) for v in values) or any(
        isinstance(v, (list, tuple)) and any(isinstance(x, torch.Tensor) for x in v) for v in values
    )


class DeviceAudit(TorchFunctionMode):
    """Records factory calls without the model's device and host synchronisations, made from mmrec code."""

    def __init__(self, device: torch.device | str, roots: tuple[Path, ...] = (MMREC,)):
        super().__init__()
        self.device = torch.device(device)
        self.roots = tuple(Path(r).resolve() for r in roots)
        self.violations: list[Finding] = []
        self.syncs: list[Finding] = []
        self._host_copies: list[torch.Tensor] = []  # results of .cpu(): .numpy() on them is fine

    def _same(self, device: Any) -> bool:
        d = torch.device(device)
        return d.type == self.device.type and (
            d.index is None or self.device.index is None or d.index == self.device.index
        )

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        where = None
        if (
            func in _FACTORIES
            or func is torch.from_numpy
            or func is torch.Tensor.numpy
            or func in _SYNCS
            or ("generator" in kwargs)
        ):
            where = _caller(self.roots)
        if where is not None:
            name = getattr(func, "__name__", str(func))
            generator = kwargs.get("generator")
            if generator is not None and not self._same(generator.device):
                self.violations.append(Finding(where, f"{name}(generator on {generator.device})"))
            if func is torch.from_numpy:
                self.violations.append(Finding(where, "torch.from_numpy (always a CPU tensor)"))
            elif func is torch.Tensor.numpy:
                if not any(args[0] is t for t in self._host_copies):
                    self.violations.append(Finding(where, ".numpy() without .cpu() (fails on a device tensor)"))
            elif func in _SYNCS:
                self.syncs.append(Finding(where, f".{_SYNCS[func]}()"))
            elif func in _FACTORIES:
                device = kwargs.get("device")
                if device is None:
                    if not (func in _FOLLOWS_INPUTS and _has_tensor(args)):
                        self.violations.append(Finding(where, f"torch.{name} without device="))
                elif not self._same(device):
                    self.violations.append(Finding(where, f"torch.{name}(device={device}) on a {self.device} model"))
        out = func(*args, **kwargs)
        if func is torch.Tensor.cpu:
            self._host_copies.append(out)
        return out

    def check(self) -> None:
        """AssertionError listing every violation (syncs are not violations)."""
        assert not self.violations, "tensors made off the model's device:\n" + "\n".join(
            sorted({str(v) for v in self.violations})
        )


def _tensors_in(value: Any, path: str, depth: int = 0) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(value, torch.Tensor):
        yield path, value
    elif depth < 3 and isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _tensors_in(v, f"{path}[{i}]", depth + 1)
    elif depth < 3 and isinstance(value, dict):
        for k, v in value.items():
            yield from _tensors_in(v, f"{path}[{k!r}]", depth + 1)


def stray_tensors(model: nn.Module, device: torch.device | str = "meta") -> list[str]:
    """Move ``model`` to ``device`` (default ``meta``) and name every tensor held by a module attribute (not a
    parameter or buffer, which move) that is not on ``device`` afterwards. The model is left on ``device``."""
    target = torch.device(device)
    model.to(target)
    found = []
    for prefix, module in model.named_modules():
        registered = set(module._parameters) | set(module._buffers) | set(module._modules)
        for name, value in vars(module).items():
            if name.startswith("__") or name in registered or name in ("_parameters", "_buffers", "_modules"):
                continue
            for path, tensor in _tensors_in(value, f"{prefix + '.' if prefix else ''}{name}"):
                if tensor.device.type != target.type:
                    found.append(f"{type(module).__name__}.{path} on {tensor.device}")
    return found
