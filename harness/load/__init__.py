"""Load tests: Locust drives signed webhook traffic; delivery is judged like any run.

`harness/shipped/locust/locustfile.py` (linked as `locustfile.py` at the repository
root; `harness locust` runs it) is the Locust side (it is the only module that
imports Locust, whose import monkey-patches with gevent). This package holds what it
and the harness share without importing Locust: the delivery tracker that turns the
mock's journal into Locust statistics, and the harness's runner that starts Locust as a
subprocess. The load shapes are the scenario's (`harness.scenario.load`).
"""
