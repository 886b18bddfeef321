"""The cache folder: content keys, atomic writes, one build under concurrency, list and prune."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest
import torch

from mmrec import cache


def test_hash_is_of_content_not_of_names() -> None:
    a = np.arange(6, dtype=np.float32)
    assert cache.hash_parts(a) == cache.hash_parts(a.copy())
    assert cache.hash_parts(a) != cache.hash_parts(a.astype(np.float64))  # dtype is content
    assert cache.hash_parts(torch.ones(3)) != cache.hash_parts(torch.ones(4))
    assert cache.hash_parts({"b": 1, "a": 2}) == cache.hash_parts({"a": 2, "b": 1})


def test_atomic_write_leaves_nothing_half_written(tmp_path: Path) -> None:
    target = tmp_path / "x.bin"
    cache.atomic_write_bytes(target, b"old")

    with pytest.raises(TypeError):
        cache.atomic_write_bytes(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]  # no temporary file left behind
    cache.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o044  # readable by others (umask 022)


def _build_in_process(root: str, counter: str) -> None:
    def build() -> torch.Tensor:
        with open(counter, "a") as f:
            f.write("x")
        return torch.arange(5)

    out = cache.cached_tensor("kind", "key", build, root=Path(root))
    assert torch.equal(out, torch.arange(5))


def test_concurrent_jobs_build_once(tmp_path: Path) -> None:
    counter = tmp_path / "builds.txt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_build_in_process, args=(str(tmp_path / "c"), str(counter))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert counter.read_text() == "x"


def test_corrupt_entry_is_rebuilt_and_list_prune(tmp_path: Path) -> None:
    root = tmp_path / "c"
    cache.cached_tensor("knn", "k1", lambda: torch.ones(2), root=root)
    (root / "knn" / "k1.pt").write_bytes(b"garbage")
    assert torch.equal(cache.cached_tensor("knn", "k1", lambda: torch.zeros(2), root=root), torch.zeros(2))
    cache.cached_tensor("adjacency", "k2", lambda: torch.ones(1), root=root)
    assert {r["kind"] for r in cache.list_entries(root)} == {"knn", "adjacency"}
    removed = cache.prune(root, kind="knn")
    assert len(removed) == 1 and {r["kind"] for r in cache.list_entries(root)} == {"adjacency"}
    assert cache.prune(root, older_than_days=1) == []  # recently used entries stay


# ---- entries hold tensors only; bad files are reported once and rebuilt, never executed ------------------------


class _Payload:
    """Unpickling this object opens (creates) ``marker``: what a planted file would do with a full unpickler."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.marker, "w"))


def _framed(payload: bytes, kind: str, key: str) -> bytes:
    """An entry header written independently of the code (the format the module docstring describes)."""
    import hashlib
    import json

    header = {"kind": kind, "key": key, "bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    return b"MMREC-CACHE 2\n" + json.dumps(header).encode() + b"\n" + payload


def _torch_bytes(obj: object) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _rebuilt_once(root: Path, kind: str, key: str) -> tuple[torch.Tensor, list[str]]:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = cache.cached_tensor(kind, key, lambda: torch.full((3,), 7.0), root=root)
        again = cache.cached_tensor(kind, key, lambda: torch.zeros(3), root=root)  # the rebuilt entry is good
    assert torch.equal(again, torch.full((3,), 7.0))
    return out, [str(w.message) for w in caught if "cache entry" in str(w.message)]


@pytest.mark.parametrize("framing", ["bare torch file", "forged header with a valid checksum"])
def test_planted_pickle_is_never_executed(tmp_path: Path, framing: str) -> None:
    root, marker = tmp_path / "c", tmp_path / "executed"
    payload = _torch_bytes({"x": _Payload(marker)})
    raw = payload if framing.startswith("bare") else _framed(payload, "knn", "k")
    (root / "knn").mkdir(parents=True)
    (root / "knn" / "k.pt").write_bytes(raw)
    out, reports = _rebuilt_once(root, "knn", "k")
    assert not marker.exists(), "the planted pickle ran"
    assert torch.equal(out, torch.full((3,), 7.0))
    assert len(reports) == 1 and str(root / "knn" / "k.pt") in reports[0]


def test_truncated_and_foreign_entries_are_reported_and_rebuilt(tmp_path: Path) -> None:
    root = tmp_path / "c"
    cache.cached_tensor("knn", "other", lambda: torch.ones(3), root=root)
    foreign = (root / "knn" / "other.pt").read_bytes()
    cases = {  # case: (how the key's own good entry is spoilt, the reason the report must give)
        "truncated": (lambda good: good[: len(good) // 2], "truncated"),
        "cut inside the header": (lambda good: good[:20], "truncated header"),
        "flipped payload byte": (lambda good: good[:-5] + bytes([good[-5] ^ 0xFF]) + good[-4:], "checksum"),
        "right name, another key's entry": (lambda good: foreign, "holds knn/other"),
        "right name, a plain tensor file": (lambda good: _torch_bytes(torch.ones(3)), "not an mmrec cache entry"),
        "empty": (lambda good: b"", "not an mmrec cache entry"),
    }
    for i, (case, (spoil, reason)) in enumerate(cases.items()):
        path = root / "knn" / f"k{i}.pt"
        cache.cached_tensor("knn", f"k{i}", lambda: torch.ones(3), root=root)
        path.write_bytes(spoil(path.read_bytes()))
        out, reports = _rebuilt_once(root, "knn", f"k{i}")
        assert torch.equal(out, torch.full((3,), 7.0)), case
        assert len(reports) == 1 and reason in reports[0] and str(path) in reports[0], (case, reports)


def test_sparse_and_tuple_entries_round_trip(tmp_path: Path) -> None:
    sparse = torch.sparse_coo_tensor(torch.tensor([[0, 1], [1, 0]]), torch.tensor([0.5, 2.0]), (2, 2)).coalesce()
    triple = (torch.arange(3), torch.arange(3) * 2, torch.ones(3))
    for key, obj in (("s", sparse), ("t", triple)):
        cache.cached_tensor("g", key, lambda o=obj: o, root=tmp_path)
        back = cache.cached_tensor("g", key, lambda: pytest.fail("rebuilt a good entry"), root=tmp_path)
        if key == "s":
            assert torch.equal(back.to_dense(), sparse.to_dense())
        else:
            assert all(torch.equal(a, b) for a, b in zip(back, triple))
