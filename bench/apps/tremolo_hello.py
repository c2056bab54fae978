"""Native hello world, run by tremolo and by the original pure-Python Tremolo 0.5.3."""

import sys

from tremolo import Tremolo

app = Tremolo()


@app.route("/hello")
async def hello(**server):
    return b"Hello world!"


if __name__ == "__main__":
    # download_rate raised so the original does not throttle; logging quiet for both
    app.run("127.0.0.1", int(sys.argv[1]), worker_num=1, log_level="ERROR",
            download_rate=1 << 40)
