"""Module-based views: each module of a package is the view of one path, its
functions named after HTTP methods (`get`, `post`, ...) handle it.

    examples/fruits/__init__.py  ->  /fruits
    examples/fruits/apple.py     ->  /fruits/apple

    python3 examples/module_based_views.py
    curl http://127.0.0.1:8000/fruits
    curl -i -d fruit=Orange http://127.0.0.1:8000/fruits    # 303 back to /fruits
    curl http://127.0.0.1:8000/fruits/apple

PORT=8080 serves on another port.
"""

import importlib
import os
import pkgutil

from tremolo import Tremolo

app = Tremolo()


def add_package(app, name, base=''):
    """Routes the package `name` at `base/name` and each of its modules (and
    subpackages) below it; names starting with `_` stay private."""
    package = importlib.import_module(name)
    path = f'{base}/{name.rsplit(".", 1)[-1]}'
    app.add_route(package, path)
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith('_'):
            continue
        if module.ispkg:
            add_package(app, f'{name}.{module.name}', path)
        else:
            app.add_route(importlib.import_module(f'{name}.{module.name}'),
                          f'{path}/{module.name}')


add_package(app, 'fruits')  # examples/ is on sys.path: it holds this script


if __name__ == '__main__':
    app.run('127.0.0.1', int(os.environ.get('PORT', 8000)))
