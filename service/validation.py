"""Checks that keep client input storable on every backend.

PostgreSQL refuses NUL characters in text and NaN or infinities in ``json`` columns, and no
JSON encoder can write a lone surrogate (``"\\ud800"``); a value that reached the database
with one of them either failed there (HTTP 500) or broke every later read of that row. These
checks run while the request is parsed, before anything is stored.
"""

from __future__ import annotations

import math
from typing import Any

#: Deepest nesting accepted in a JSON object sent by a client (``context``, ``params``).
MAX_JSON_DEPTH = 32


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored, or None when it can."""
    if "\x00" in value:
        return "must not contain NUL (\\u0000) characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (found a lone surrogate such as \\ud800)"
    return None


def check_text(value: str) -> str:
    """``value`` unchanged, or ``ValueError`` when it holds a NUL or a lone surrogate.

    >>> check_text("café")
    'café'
    """
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def check_json(value: Any, name: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise ``ValueError`` naming the path (``context.a[2]``) of the first value that is a
    non-finite number, a string (or key) with a NUL or a lone surrogate, or nested deeper
    than ``max_depth``.

    >>> check_json({"a": [1, 2.5, "x"]}, "context")
    >>> check_json({"a": [float("nan")]}, "context")
    Traceback (most recent call last):
    ...
    ValueError: context.a[0]: numbers must be finite (no NaN or Infinity)
    """
    stack: list[tuple[Any, str, int]] = [(value, name, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > max_depth:
            raise ValueError(f"{path}: nested deeper than {max_depth} levels")
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                raise ValueError(f"{path}: strings {problem}")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"{path}: numbers must be finite (no NaN or Infinity)")
        elif isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    raise ValueError(f"{path}: object keys must be strings")
                problem = text_problem(k)
                if problem is not None:
                    raise ValueError(f"{path}: keys {problem}")
                stack.append((v, f"{path}.{k}", depth + 1))
        elif isinstance(item, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(item))
        elif item is not None and not isinstance(item, (bool, int)):
            raise ValueError(f"{path}: {type(item).__name__} is not a JSON value")
