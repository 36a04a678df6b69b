"""stagger-harness: runs the fixtures flow under each Celery pool and checks delivery."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stagger-harness")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
