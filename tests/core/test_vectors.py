"""The shared request vectors (also run by cargo test), through the Python binding:
each fed whole, one byte at a time, and split in two at every position."""

from __future__ import annotations

from typing import Any

import pytest

from ..helpers import latin1, load_vectors, run_parser

VECTORS = load_vectors()


def test_vector_set_is_substantial() -> None:
    names = [v["name"] for v in VECTORS]
    assert len(names) == len(set(names)), "vector names must be unique"
    assert sum(n.startswith("y_") for n in names) > 80
    assert sum(n.startswith("n_") for n in names) > 150


@pytest.mark.parametrize("case", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector(case: dict[str, Any]) -> None:
    data = latin1(case["input"])
    whole = run_parser([data])
    assert run_parser([data[i:i + 1] for i in range(len(data))]) == whole
    for i in range(1, len(data)):
        assert run_parser([data[:i], data[i:]]) == whole, f"split at {i}"
    if case["name"].startswith("y_"):
        assert whole.error is None
    else:
        assert whole.error is not None
        if "status" in case:
            assert whole.error == case["status"]
        if "answer" in case:
            assert whole.answer == case["answer"]
    if "requests" in case:
        complete = [r for r in whole.requests if r.complete]
        assert len(complete) == len(case["requests"])
        for got, want in zip(complete, case["requests"], strict=True):
            assert got.method == latin1(want["method"])
            assert got.target == latin1(want["target"])
            assert got.body == latin1(want["body"])
            if "headers" in want:
                assert got.headers == [(latin1(n), latin1(v)) for n, v in want["headers"]]
            if "trailers" in want:
                assert got.trailers == [(latin1(n), latin1(v)) for n, v in want["trailers"]]
    assert whole.paused == case.get("upgrade", False)
