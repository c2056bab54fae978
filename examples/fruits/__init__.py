"""The view of /fruits (see examples/module_based_views.py)."""

import html

FRUITS = ['Apple', 'Banana']
LINKS = {'Apple': '/fruits/apple'}
MAX_FRUITS = 5


async def get(**server):
    yield '<h2>Fruits</h2><ul>'
    for fruit in FRUITS:
        name = html.escape(fruit)  # what visitors typed is text, never markup
        link = LINKS.get(fruit)
        yield f'<li><a href="{link}">{name}</a></li>' if link else f'<li>{name}</li>'
    yield ('</ul><form action="/fruits" method="post">'
           '<input name="fruit" placeholder="Orange" /> <button>Add</button></form>')


async def post(request, response, **server):
    form = await request.form()
    for fruit in form.get('fruit', []):
        fruit = fruit.strip()[:40]
        if fruit and fruit not in FRUITS:
            FRUITS.append(fruit)
    del FRUITS[:-MAX_FRUITS]
    raise response.redirect('/fruits', code=303)
