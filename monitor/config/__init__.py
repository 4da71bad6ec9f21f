"""Configuration: the schema of feeds.yaml (pydantic), its values (durations, URLs, secrets
from the environment), loading with line-and-field errors, and OPML import/export.

May import: monitor.domain, monitor.errors. Nothing else of monitor.
"""
