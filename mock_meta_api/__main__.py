"""`python -m mock_meta_api`: the same as the `mock-meta-api` command."""

from .cli import main

main()
