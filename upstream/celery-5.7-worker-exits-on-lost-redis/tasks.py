"""The smallest Celery app that holds ETA tasks: one task, a Redis broker from the environment."""

import os

from celery import Celery

app = Celery("tasks", broker=os.environ["BROKER_URL"])


@app.task
def part(n: int) -> int:
    return n
