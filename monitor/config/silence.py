"""The `silence:` section of feeds.yaml: when a country's sources going quiet is a signal.

(Being built: monitor.signals holds the detector.)
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SilenceSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
