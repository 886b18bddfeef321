"""The README's GPU table from a ``scripts/gpu_check.sh`` folder (prints Markdown).

Usage: ``python scripts/gpu_table.py OUT_DIR``. Reads ``environment.json``, ``models_cuda.jsonl`` (one line per
model from ``benchmarks/models.py --device cuda --json``), ``overhead_cuda.json`` and
``tiktok_freedom_summary.json``; whatever is missing is reported as missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def main(folder: Path) -> None:
    env = _read_json(folder / "environment.json") or {}
    print(
        f"GPU: {env.get('gpu', '?')} ({env.get('gpu_memory_gb', '?')} GB), torch {env.get('torch', '?')}, "
        f"CUDA {env.get('cuda_build', '?')}, Python {env.get('python', '?')}\n"
    )
    print("| model | epoch s | kernels s | × | evaluation s | kernels + top-K s | × | peak GPU GB |")
    print("|---|---|---|---|---|---|---|---|")
    rows = folder / "models_cuda.jsonl"
    seen = []
    for line in rows.read_text().splitlines() if rows.exists() else []:
        r = json.loads(line)
        seen.append(r["model"])
        print(
            f"| {r['model']} | {r['epoch_s']:.2f} | {r['epoch_kernels_s']:.2f} | {r['epoch_ratio']:.2f} | "
            f"{r['eval_s']:.3f} | {r['eval_kernels_s']:.3f} | {r['eval_ratio']:.2f} | {r['peak_gpu_gb']:.2f} |"
        )
    if not seen:
        print("| (no benchmark results) | | | | | | | |")
    overhead = _read_json(folder / "overhead_cuda.json")
    if overhead:
        bare = overhead["bare_s"][1:] or overhead["bare_s"]
        light = overhead["lightning_s"][1:] or overhead["lightning_s"]
        print(
            f"\nLightning path vs bare loop ({overhead['model']}, Baby, cuda): bare {min(bare):.2f} s, "
            f"train.py's path {min(light):.2f} s per epoch ({100 * overhead['overhead']:+.1f}% on the medians)"
        )
    summary = _read_json(folder / "tiktok_freedom_summary.json")
    if summary:
        t, epochs = summary["timing"], summary.get("epochs_run") or 0
        mem = summary["memory"].get("peak_gpu_mb")
        print(
            f"\nFREEDOM on TikTok through train.py (trainer=gpu, {epochs} epochs): "
            f"{t.get('fit', float('nan')) / max(epochs, 1):.2f} s per epoch with its validation, test evaluation "
            f"{t.get('test', float('nan')):.2f} s, peak GPU {mem if mem is None else round(mem / 1024, 2)} GB, "
            f"test recall@20 {summary['metrics']['test'].get('recall@20', float('nan')):.4f}"
        )
    else:
        print("\nFREEDOM on TikTok: no summary.json (see gpu_check.log)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
