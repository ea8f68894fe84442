"""The benchmark scripts of `make bench` import against today's modules (they run outside `make test`, so a moved
name would otherwise break them unnoticed); nothing is timed here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("bench_*.py")))
def test_a_benchmark_script_imports(script: str) -> None:
    name = f"bench_import_check_{script[:-3]}"
    spec = importlib.util.spec_from_file_location(name, BENCH / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import would (dataclasses look their module up there)
    try:
        spec.loader.exec_module(module)  # the imports and definitions; main() runs only as a script
    finally:
        del sys.modules[name]
    assert callable(getattr(module, "main", None)), f"{script} has no main()"
