"""The README's Python quick start runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_quick_start_runs() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Python quick start", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), "README quick start", "exec"), namespace)
    assert namespace["clone"].select().arm in range(3)  # type: ignore[attr-defined]
