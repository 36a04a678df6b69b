"""stagger-harness: runs the fixtures flow under each Celery pool and checks delivery."""
