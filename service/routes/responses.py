"""The error answers a route can give, for its OpenAPI ``responses`` (one body: ``Error``)."""

from __future__ import annotations

from typing import Any

from service.schemas import Error

DESCRIPTIONS = {
    400: "Malformed request body.",
    401: "Missing, invalid or revoked API key.",
    403: "The API key's scope or experiments do not cover this operation.",
    404: "No such experiment (or decision).",
    409: "Conflict with the experiment's state or an existing key.",
    413: "Request body, context or batch above its configured limit.",
    422: "Invalid input: `detail` names each field and what is wrong, `errors` lists them.",
    503: "The database does not answer.",
}

#: Every route behind an API key whose path names an experiment.
KEYED = (401, 403, 422)
#: Every route that reads a JSON body.
BODY = (400, 413, 422)


def errors(*codes: int | tuple[int, ...], **described: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for these status codes; ``described`` overrides a description, e.g.
    ``errors(KEYED, 404, s409="paused and set to reject")``."""
    flat: set[int] = set()
    for c in codes:
        flat.update(c if isinstance(c, tuple) else (c,))
    out: dict[int | str, dict[str, Any]] = {}
    for code in sorted(flat):
        text = described.get(f"s{code}", DESCRIPTIONS[code])
        out[code] = {"model": Error, "description": text}
    return out
