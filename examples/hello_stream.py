# The streaming hello world of the original Tremolo README, unchanged.
from tremolo import Tremolo

app = Tremolo()


@app.route('/hello')
async def hello_world(**server):
    yield b'Hello '
    yield b'world!'


if __name__ == '__main__':
    app.run('0.0.0.0', 8000, debug=True)
