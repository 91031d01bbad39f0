"""The model directory that ``bandit-fusion arms train|tune|evaluate`` share.

Layout::

    MODELS/split.json          how the split was made and its fingerprint (train writes it)
    MODELS/params.json         best parameters per arm (tune writes, train reads)
    MODELS/tuning/<arm>.json   every trial of the last grid search of <arm>
    MODELS/<arm>/arm.json      one saved arm (BaseArm.save)
    MODELS/<arm>/state.safetensors

Evaluation recomputes the split from ``--data`` and compares its fingerprint with
the one saved at training time, so a different data folder (or a changed file) is
refused instead of silently scoring against held-out items the arms may have seen.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from arms.splits import SplitSpec

__all__ = [
    "PARAMS_FILE",
    "SPLIT_FILE",
    "SplitMismatchError",
    "SplitRecord",
    "arm_folders",
    "read_params",
    "read_split",
    "write_params",
    "write_split",
]

SPLIT_FILE = "split.json"
PARAMS_FILE = "params.json"


class SplitMismatchError(ValueError):
    """``--data`` gives a different train/test split from the one the models were trained on."""


@dataclass(frozen=True, slots=True)
class SplitRecord:
    """What ``split.json`` holds.

    Attributes
    ----------
    spec : SplitSpec
    fingerprint : str
        :func:`arms.splits.split_fingerprint` of the training split ("" in folders
        written before fingerprints existed: then nothing can be checked).
    data : str
        The ``--data`` folder used for training (for the record only).
    arms : list of str
        The arms in training order.
    fit_seconds : dict
    trained_at : str
        When training ended, ISO 8601 in UTC ("" in folders written before it was recorded).
    """

    spec: SplitSpec
    fingerprint: str = ""
    data: str = ""
    arms: list[str] = field(default_factory=list)
    fit_seconds: dict[str, float] = field(default_factory=dict)
    trained_at: str = ""

    def check(self, fingerprint: str, data: str) -> None:
        """Raise :class:`SplitMismatchError` unless ``fingerprint`` matches the saved one."""
        if self.fingerprint and fingerprint != self.fingerprint:
            raise SplitMismatchError(
                f"data {data!r} gives a different split from the one these models were "
                f"trained on (trained on {self.data!r}; split fingerprints "
                f"{fingerprint[:12]} != {self.fingerprint[:12]}). Evaluate with the "
                "training data, or train again on this data."
            )


def write_split(folder: Path, record: SplitRecord) -> None:
    """Write ``folder/split.json``."""
    payload = {
        "data": record.data,
        "fingerprint": record.fingerprint,
        "arms": record.arms,
        "fit_seconds": record.fit_seconds,
        "trained_at": record.trained_at,
        **asdict(record.spec),
        "split": record.spec.by,
    }
    payload.pop("by")
    (folder / SPLIT_FILE).write_text(json.dumps(payload, indent=2))


def read_split(folder: Path) -> SplitRecord:
    """Read ``folder/split.json`` (defaults of :class:`SplitSpec` where a key is missing)."""
    path = folder / SPLIT_FILE
    meta: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    spec = SplitSpec(
        test_fraction=float(meta.get("test_fraction", 0.2)),
        by=str(meta.get("split", "user")),
        cold_users=float(meta.get("cold_users", 0.0)),
        cold_history=int(meta.get("cold_history", 3)),
        seed=int(meta.get("seed", 0)),
    )
    return SplitRecord(
        spec,
        str(meta.get("fingerprint", "")),
        str(meta.get("data", "")),
        list(meta.get("arms", [])),
        dict(meta.get("fit_seconds", {})),
        str(meta.get("trained_at", "")),
    )


def arm_folders(folder: Path) -> list[Path]:
    """Sub-folders holding a saved arm, in the training order of ``split.json``, then by name."""
    found = sorted(p.parent for p in folder.glob("*/arm.json"))
    order = {name: i for i, name in enumerate(read_split(folder).arms)}
    return sorted(found, key=lambda p: (order.get(p.name, len(order)), p.name))


def read_params(folder: Path) -> dict[str, dict[str, Any]]:
    """``folder/params.json`` (arm -> parameters), or ``{}`` if absent."""
    path = folder / PARAMS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def write_params(folder: Path, arm: str, params: dict[str, Any], tuning: dict[str, Any]) -> None:
    """Store ``params`` as the best parameters of ``arm`` and ``tuning`` as its trial record."""
    folder.mkdir(parents=True, exist_ok=True)
    merged = read_params(folder)
    merged[arm] = params
    (folder / PARAMS_FILE).write_text(json.dumps(merged, indent=2, sort_keys=True))
    (folder / "tuning").mkdir(exist_ok=True)
    (folder / "tuning" / f"{arm}.json").write_text(json.dumps(tuning, indent=2))
