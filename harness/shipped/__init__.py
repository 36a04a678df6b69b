"""What the harness ships beside its code: scenarios, compose files, the Locust side.

Data, read through `harness.resources`; a package only so that `importlib.resources`
finds it wherever the harness is installed.
"""
