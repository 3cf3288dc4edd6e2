"""Command-line mains: `tfgraft <command>` and `python tools/<command>.py`."""
