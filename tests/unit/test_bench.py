"""The benchmark scripts of `make bench` import against today's modules (they run outside `make test`, so a moved
name would otherwise break them unnoticed); nothing is timed here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("bench_*.py")))
def test_a_benchmark_script_imports(script: str) -> None:
    spec = importlib.util.spec_from_file_location(f"bench_{script[:-3]}", BENCH / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the imports and definitions; main() runs only as a script
    assert callable(getattr(module, "main", None)), f"{script} has no main()"
