"""The daemon: building the real objects (bootstrap), the scheduler's jobs, the poller
that leases and fetches due feeds, the pipeline that stores one batch of feeds (dedup,
classify, store, events), poll timing and logging.

May import every lower package: config, intake, classify, events, alerts, store. Not cli.
"""
