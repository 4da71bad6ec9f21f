"""Persistence: typed models, engine/session setup and the queries the pipeline needs
(those for clustering in event_repo).

May import: monitor's core modules and intake's plain types (the dedup plan it stores). Not
classify, alerts, events, daemon or cli.
"""
