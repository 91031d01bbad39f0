"""The README's fusion example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[2] / "README.md"


def test_fusion_example_runs() -> None:
    section = README.read_text(encoding="utf-8").split("### Fusion", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    ns: dict[str, object] = {}
    exec(compile(code.group(1), "README fusion", "exec"), ns)
    out = ns["out"]
    assert out.items.shape == (2, 10)  # type: ignore[attr-defined]
    assert ns["policy"].counts.sum() == 20  # type: ignore[attr-defined]
    assert np.isclose(ns["blend"].credit[0, 0].sum(), 1.0)  # type: ignore[attr-defined]
    diverse, genre = ns["diverse"], ns["genre"]
    for row in diverse.items:  # type: ignore[attr-defined]
        assert np.bincount(genre[row]).max() <= 3  # type: ignore[index]
