"""Capacity: how many "fixtures" requests per second each lane configuration keeps on time.

`harness capacity` searches, per configuration (a lane: pool, concurrency, settings), for
the highest sustained rate at which the lateness p95 stays within the on-time bound and
nothing is lost. Each step is a bounded Locust load on the local stack (`runner`), every
configuration still searching measured side by side at a rate of its own; the search
itself (`search`) and the bounds it is compared with (`theory`) are pure functions.
"""
