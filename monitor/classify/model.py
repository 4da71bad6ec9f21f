"""The trained linear model: weights over hashed n-grams and rule flags, saved without pickle.

The file is a zip of plain .npy arrays (`np.load(..., allow_pickle=False)` cannot run code
from it) plus the metadata as JSON bytes. Entries carry a fixed timestamp, so the same model
always gives a byte-identical file.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.errors import ModelError

from .features import FeatureConfig

# 2: text features hashed in-house (features.py: CRC-32 + 64-bit mixing), not by scikit-learn.
FORMAT = 2
RELEVANT = "relevant"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """Linear heads (relevance, then one per category) over one feature space."""

    config: FeatureConfig
    heads: tuple[str, ...]
    weights: FloatArray  # (features, heads)
    bias: FloatArray  # (heads,)
    threshold: float
    rules_digest: str
    rule_names: tuple[str, ...]
    trained_on: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """A content hash: two models share it only if they are the same model."""
        digest = hashlib.sha256(_meta_bytes(self, with_version=False))
        digest.update(np.ascontiguousarray(self.weights).tobytes())
        digest.update(np.ascontiguousarray(self.bias).tobytes())
        return f"clf{FORMAT}-{digest.hexdigest()[:12]}"

    def head(self, name: str) -> int | None:
        """Column of the named head, None if the model has none."""
        return self.heads.index(name) if name in self.heads else None


# Feature options added after format 2 came out, with the value that means "as before": they
# are stored only when set, so the files of older models keep their content hash (version).
_LATER_OPTIONS = {"class_flags": False}


def _config_meta(config: FeatureConfig) -> dict[str, Any]:
    """The feature configuration as stored, without later options left at their old value."""
    stored = asdict(config)
    for name, old in _LATER_OPTIONS.items():
        if stored.get(name) == old:
            del stored[name]
    return stored


def _meta(model: TrainedModel) -> dict[str, Any]:
    """Everything but the arrays, as JSON-ready values."""
    return {
        "format": FORMAT,
        "config": _config_meta(model.config),
        "heads": list(model.heads),
        "threshold": model.threshold,
        "rules_digest": model.rules_digest,
        "rule_names": list(model.rule_names),
        "trained_on": model.trained_on,
        "extra": model.extra,
        "width": int(model.weights.shape[0]),
    }


def _meta_bytes(model: TrainedModel, *, with_version: bool) -> bytes:
    """Canonical JSON of the metadata (sorted keys, so hashing and saving are stable)."""
    meta = _meta(model)
    if with_version:
        meta["version"] = model.version
    return json.dumps(meta, sort_keys=True, ensure_ascii=False).encode()


def _npy(array: npt.NDArray[Any]) -> bytes:
    """One array in .npy format."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def save_model(model: TrainedModel, path: Path | str) -> None:
    """Write the model; only nonzero weights are stored, column by column."""
    path = Path(path)
    rows, cols = np.nonzero(model.weights.T)  # head-major order
    arrays: dict[str, npt.NDArray[Any]] = {
        "meta": np.frombuffer(_meta_bytes(model, with_version=True), dtype=np.uint8),
        "head": rows.astype(np.int16),
        "index": cols.astype(np.int32),
        "value": model.weights.T[rows, cols].astype(np.float32),
        "bias": model.bias.astype(np.float32),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, _npy(array))


def _config(raw: dict[str, Any]) -> FeatureConfig:
    """The feature configuration stored in a model file."""
    return FeatureConfig(**raw)


def load_model(path: Path | str) -> TrainedModel:
    """Read a model file; ModelError if it is missing, corrupt or of another format."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ModelError(f"model file {path} is not a valid model: not a zip of arrays")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            head, index, value, bias = (data[k] for k in ("head", "index", "value", "bias"))
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise ModelError(f"model file {path} is not a valid model: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise ModelError(
            f"model file {path} has format {meta.get('format')}, expected {FORMAT}; "
            "retrain it (python -m monitor.classify CORPUS.jsonl)"
        )
    try:
        heads = tuple(meta["heads"])
        weights = np.zeros((int(meta["width"]), len(heads)), dtype=np.float32)
        weights[index, head] = value
        model = TrainedModel(
            config=_config(meta["config"]),
            heads=heads,
            weights=weights,
            bias=bias.astype(np.float32),
            threshold=float(meta["threshold"]),
            rules_digest=str(meta["rules_digest"]),
            rule_names=tuple(meta["rule_names"]),
            trained_on=int(meta["trained_on"]),
            extra=dict(meta.get("extra", {})),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelError(f"model file {path} is inconsistent: {exc}") from exc
    if meta.get("version") != model.version:
        raise ModelError(f"model file {path} is corrupt: content does not match its version")
    return model
