"""The on-disk record of a sensitivity measurement, written after every result.

One JSON file per key (model identity, importance matrix, text, settings, tensor set) in
``<quality cache>/sensitivity/``. It holds the weight errors per tensor and the measured KLD per
run; a cancelled computation leaves what it measured, and the next one resumes from there.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..quality.cache import cache_dir, file_identity

FORMAT = 1


def imatrix_identity(imatrix: Any | None) -> str | None:
    """A digest of the importance values (None without a matrix)."""
    if imatrix is None:
        return None
    h = hashlib.sha256()
    for name in sorted(imatrix.entries):
        h.update(name.encode())
        h.update(imatrix.entries[name].tobytes())
    return h.hexdigest()


def store_key(model_path: str | os.PathLike[str], imatrix: Any | None, text: bytes, settings: dict[str, Any]) -> str:
    """A short hash naming the measurement of this model, matrix, text and settings."""
    doc = {
        "format": FORMAT,
        "model": file_identity(model_path),
        "imatrix": imatrix_identity(imatrix),
        "text_sha256": hashlib.sha256(text).hexdigest(),
        "settings": settings,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


class Store:
    """Measured values by kind ("errors": tensor -> {type: e}, "runs": run id -> KLD).

    With ``path`` None nothing is read or written (an uncached computation).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, dict[str, Any]] = {"errors": {}, "runs": {}}
        if path is not None and path.is_file():
            try:
                loaded = json.loads(path.read_text())
            except (OSError, ValueError):
                loaded = None  # a damaged record is measured again
            if isinstance(loaded, dict) and loaded.get("format") == FORMAT:
                self.data["errors"].update(loaded.get("errors", {}))
                self.data["runs"].update(loaded.get("runs", {}))

    @classmethod
    def for_key(cls, key: str) -> Store:
        folder = cache_dir() / "sensitivity"
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder / f"sens-{key}.json")

    def get(self, kind: str, name: str) -> Any | None:
        return self.data[kind].get(name)

    def put(self, kind: str, name: str, value: Any) -> None:
        """Record one result and persist the whole record atomically."""
        self.data[kind][name] = value
        if self.path is None:
            return
        doc = {"format": FORMAT, **self.data}
        fd, tmp = tempfile.mkstemp(prefix=".sens-", suffix=".part", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f)
            os.replace(tmp, self.path)
        finally:
            Path(tmp).unlink(missing_ok=True)
