"""The view of /fruits/apple (see examples/module_based_views.py)."""


async def get(**server):
    return ('<h2>Apple</h2><p>This page is the module <code>fruits/apple.py</code>: its '
            '<code>get()</code> answers GET and HEAD here. Back to the '
            '<a href="/fruits">fruits</a>.</p>')
