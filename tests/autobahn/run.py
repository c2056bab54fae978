"""Runs Autobahn|Testsuite's fuzzing client against the native and the ASGI echo
servers and writes a summary table.

    python tests/autobahn/run.py [--cases 1.*,2.*] [--out DIR]

Needs `wstest` (autobahntestsuite, Python 2.7): `make autobahn-env` installs it in
.autobahn/. Exits 1 if any case's verdict is FAILED (or a server did not run).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WSTEST = Path(os.environ.get("WSTEST", ROOT / ".autobahn" / "bin" / "wstest"))
GOOD = {"OK", "NON-STRICT", "INFORMATIONAL"}
HEADER = """# Autobahn|Testsuite summary

Written by `make autobahn` (tests/autobahn/run.py): every case of the fuzzing client
(autobahntestsuite 25.10.1) against the native echo server (echo_native.py) and the
ASGI echo application (echo_asgi.py), each a tremolo server on 127.0.0.1 with
ws_max_payload_size 16 MiB. Chapters 12 and 13 are permessage-deflate. A case counts as
FAILED when its behaviour or its close behaviour is neither OK, NON-STRICT nor
INFORMATIONAL.

"""
FOOTER = """
INFORMATIONAL cases are those whose verdict the suite leaves to the reader (7.1.6: a
close after a large message that may or may not be echoed first; 7.13.1 and 7.13.2:
close codes outside the defined ranges, which the server answers with 1002).
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on {port} did not start")


def servers() -> dict[str, list[str]]:
    py = sys.executable
    native, asgi = free_port(), free_port()
    return {
        f"tremolo-native:{native}": [py, str(HERE / "echo_native.py"), str(native)],
        f"tremolo-asgi:{asgi}": [py, "-m", "tremolo", "--port", str(asgi), "--log-level",
                                 "WARNING", "--ws-max-payload-size", str(16 << 20),
                                 "--request-timeout", "60", str(HERE / "echo_asgi.py")],
    }


def summarize(outdir: Path) -> tuple[str, int]:
    index = json.loads((outdir / "index.json").read_text())
    lines = ["| server | chapter | cases | OK | NON-STRICT | INFORMATIONAL | UNIMPLEMENTED "
             "| FAILED |", "|---|---|---|---|---|---|---|---|"]
    failed = 0
    for agent, cases in sorted(index.items()):
        chapters: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter)
        for case, result in cases.items():
            verdict = result["behavior"]
            close = result.get("behaviorClose", "OK")
            if verdict not in GOOD | {"UNIMPLEMENTED"} or close not in GOOD:
                failed += 1
                print(f"{agent} {case}: {verdict} (close {close})", file=sys.stderr)
                verdict = "FAILED"
            chapters[case.split(".")[0]][verdict] += 1
        for chapter in sorted(chapters, key=int):
            c = chapters[chapter]
            lines.append(f"| {agent} | {chapter} | {sum(c.values())} | {c['OK']} | "
                         f"{c['NON-STRICT']} | {c['INFORMATIONAL']} | {c['UNIMPLEMENTED']} "
                         f"| {c['FAILED']} |")
    return "\n".join(lines) + "\n", failed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", default="*", help="comma-separated case patterns")
    parser.add_argument("--out", default=None, help="where the reports go")
    parser.add_argument("--summary", default=None, help="write the table to this file")
    args = parser.parse_args()
    if not WSTEST.exists():
        print(f"{WSTEST} not found: run `make autobahn-env`", file=sys.stderr)
        return 2
    outdir = Path(args.out or tempfile.mkdtemp(prefix="autobahn-")).resolve()
    procs = []
    try:
        spec_servers = []
        for agent_port, cmd in servers().items():
            agent, port = agent_port.split(":")
            proc = subprocess.Popen(cmd, cwd=ROOT)
            procs.append(proc)
            wait_port(int(port), proc)
            spec_servers.append({"agent": agent, "url": f"ws://127.0.0.1:{port}"})
        spec = {"outdir": str(outdir), "servers": spec_servers,
                "cases": args.cases.split(","), "exclude-cases": [],
                "exclude-agent-cases": {}}
        spec_file = outdir / "fuzzingclient.json"
        outdir.mkdir(parents=True, exist_ok=True)
        spec_file.write_text(json.dumps(spec))
        # (its log says which case runs: what to look at if one never ends)
        with open(outdir / "wstest.log", "w") as log:
            subprocess.run([str(WSTEST), "-m", "fuzzingclient", "-s", str(spec_file)],
                           check=True, cwd=outdir, stdout=log, timeout=3000)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    table, failed = summarize(outdir)
    print(table)
    if args.summary:
        Path(args.summary).write_text(HEADER + table + FOOTER)
    print(f"reports in {outdir}; {failed} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
