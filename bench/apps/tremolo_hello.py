"""Native app, run by tremolo and by the original pure-Python Tremolo 0.5.3:
/hello (12 bytes) and /64k (65536 bytes). BENCH_WORKERS sets the worker count (1)."""

import os
import sys

from tremolo import Tremolo

app = Tremolo()
BIG = b"x" * 65536


@app.route("/hello")
async def hello(**server):
    return b"Hello world!"


@app.route("/64k")
async def big(**server):
    return BIG


if __name__ == "__main__":
    # download_rate raised so the original does not throttle; logging quiet for both
    app.run("127.0.0.1", int(sys.argv[1]), worker_num=int(os.environ.get("BENCH_WORKERS", "1")),
            log_level="ERROR", download_rate=1 << 40, buffer_size=65536)
