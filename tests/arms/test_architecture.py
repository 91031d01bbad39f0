"""``arms`` stands alone: it never imports the bandit, the service, the simulations or the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import torch

from arms import resolve_device

ARMS_DIR = Path(__file__).resolve().parents[2] / "arms"
FORBIDDEN = {"bandit", "service", "simulations", "cli"}


def test_arms_imports_no_other_layer() -> None:
    for path in sorted(ARMS_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not roots & FORBIDDEN, f"{path.name} imports {roots & FORBIDDEN}"


def test_transformers_is_imported_lazily() -> None:
    for name in ("bert.py", "minilm.py"):
        tree = ast.parse((ARMS_DIR / name).read_text())
        top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        modules = {getattr(n, "module", None) or n.names[0].name for n in top}
        heavy = ("transformers", "sentence_transformers")
        assert not any(m and m.startswith(heavy) for m in modules)


def test_device_defaults_to_cuda_when_available_else_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected
    assert resolve_device("cpu").type == "cpu"
