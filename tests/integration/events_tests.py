"""Event stream integration tests (API.md §6). Registered by run.py."""
