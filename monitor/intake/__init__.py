"""Intake, the first stages of the flow: fetch (httpx, conditional GET, caps, the per-host
gate), the SSRF guard for redirects, the parser processes, parse (feedparser, JSON Feed),
normalize (canonical URLs, text, dates) and dedup (which entries are new items).

May import: monitor.domain, monitor.errors, monitor.clock. Not config, classify, events,
alerts, store, daemon or cli.
"""
