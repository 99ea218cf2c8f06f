"""Channel-core tests use the shared `app_db` fixture (tests/conftest.py)."""
