"""The original Tremolo's own test suite, run unchanged against this tremolo (from
../shared/tremolo-upstream, with its runner run.sh): every one of its tests passes, or
is listed by its id in docs/differences.md ("The original's own test suite") as one of
two kinds, with its reason:

- deliberate: tremolo behaves differently on purpose, and is right (an RFC, security);
- internal: the test inspects an internal object of the original that programs do not use.

A listed test that passes fails this test too (the listing must say what is true), and
the counts written in docs/differences.md and README.md must be the run's."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.external  # the original's suite in ../shared

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = ROOT.parent / "shared" / "tremolo-upstream"
DIFFERENCES = ROOT / "docs" / "differences.md"
README = ROOT / "README.md"
KINDS = ("deliberate", "internal")
ROW = re.compile(r"^\| `(test_\w+\.\w+\.\w+)` \| (\w+) \| (.+) \|$")
SUMMARY = re.compile(r"(\d+) pass, (\d+) listed \((\d+) deliberate, (\d+) internal\)")


def upstream_ids() -> list[str]:
    """Every test the upstream files define (as run.sh counts them)."""
    ids = []
    for path in sorted((UPSTREAM / "tests").glob("test*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                ids += [f"{path.stem}.{node.name}.{f.name}" for f in node.body
                        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                        and f.name.startswith("test")]
    return ids


def listing() -> dict[str, tuple[str, str]]:
    """test id -> (kind, reason), from docs/differences.md."""
    section = DIFFERENCES.read_text().split("## The original's own test suite", 1)
    assert len(section) == 2, "docs/differences.md has no section on the original's suite"
    rows: dict[str, tuple[str, str]] = {}
    for line in section[1].split("\n## ", 1)[0].splitlines():
        m = ROW.match(line)
        if m:
            assert m[1] not in rows, f"{m[1]} is listed twice"
            assert m[2] in KINDS, f"{m[1]}: kind {m[2]!r} is not one of {KINDS}"
            rows[m[1]] = (m[2], m[3])
    return rows


def test_the_listing_is_well_formed() -> None:
    rows = listing()
    if UPSTREAM.is_dir():
        unknown = sorted(set(rows) - set(upstream_ids()))
        assert not unknown, f"listed but not an upstream test: {unknown}"
    for tid, (_, reason) in rows.items():
        assert len(reason) > 20, f"{tid}: the reason says too little"


@pytest.mark.skipif(not UPSTREAM.is_dir(), reason=f"the original's suite is not at {UPSTREAM} "
                    "(it is beside the project in CI); the listing is still checked above")
def test_the_originals_suite_passes_or_is_listed(tmp_path: Path) -> None:
    out = subprocess.run(["bash", str(UPSTREAM / "run.sh"), sys.executable],
                         env={**os.environ, "RESULTS_DIR": str(tmp_path)},
                         capture_output=True, text=True, timeout=420, cwd=tmp_path)
    log = out.stdout + out.stderr
    (tmp_path / "run.log").write_text(log)  # the whole run, to read after a failure
    results = json.loads((tmp_path / "results.json").read_text())["tests"]
    ids = upstream_ids()
    passed = {t for t in ids if results.get(t, {}).get("outcome") == "pass"}
    assert passed, f"no upstream test passed: the run did not happen\n{log[-3000:]}"
    rows = listing()
    failing = [t for t in ids if t not in passed]
    unexplained = [f"{t}: {results.get(t, {}).get('outcome', 'not run')}: "
                   f"{(results.get(t, {}).get('detail') or '').strip()[-400:]}"
                   for t in failing if t not in rows]
    assert not unexplained, "upstream tests that fail and are not listed in " \
        "docs/differences.md:\n" + "\n\n".join(unexplained)
    stale = sorted(t for t in rows if t in passed)
    assert not stale, f"listed in docs/differences.md but passing now: {stale}"
    counts = (len(passed), len(failing),
              sum(rows[t][0] == "deliberate" for t in failing),
              sum(rows[t][0] == "internal" for t in failing))
    for doc in (DIFFERENCES, README):
        text = " ".join(doc.read_text().split())  # (the sentence may wrap)
        found = [tuple(map(int, m)) for m in SUMMARY.findall(text)]
        assert counts in found, f"{doc.name} should say '{counts[0]} pass, {counts[1]} " \
            f"listed ({counts[2]} deliberate, {counts[3]} internal)', it says {found}"
