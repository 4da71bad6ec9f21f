"""Events: one event per government measure, however many reports. Text fingerprints
(MinHash, LSH bands), what a measure acts on (targets), identity matching and stage moves
(pure), the batch of events held in memory while a batch of items is placed, and the
recorder that joins or starts events and queues the alerts they earn.

May import: monitor.domain, monitor.errors, monitor.classify (its term matcher and text
normalization), monitor.store, monitor.alerts. Not daemon or cli.
"""
