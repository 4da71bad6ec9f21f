"""The web surface: dashboard pages, the JSON API, feeds out, metrics and health.

Reads through store/ and writes only analyst verdicts and operator actions. It may import
every package below it (config … daemon), and only the cli imports it. Nothing is module
state: the app is built from a `WebContext`, which holds the engine, the clock and the
daemon's state seams.
"""
