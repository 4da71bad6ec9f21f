"""The `corroboration:` section of feeds.yaml: which network-measurement services are asked.

(Being built: monitor.signals holds the clients and the verdicts.)
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CorroborationSpec(BaseModel):
    """On by default for the services that need no secret."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
