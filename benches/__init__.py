"""Benchmarks (a package so that ``benches/conftest.py`` does not shadow ``tests/conftest.py``:
both would otherwise be imported as the top-level module ``conftest``)."""
