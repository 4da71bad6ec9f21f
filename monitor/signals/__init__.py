"""Signals beside the news: network-measurement services (OONI, IODA, Cloudflare Radar) that
corroborate or contradict an event, and a country's sources falling silent together.

May import config, intake, classify, store, alerts, events and the core modules; the daemon
runs its jobs, the web shows its verdicts.
"""
