"""Persistence: typed models, engine/session setup and the queries the pipeline needs."""
