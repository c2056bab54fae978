"""tremolo.utils: the original's public helpers, with the original's results."""

from __future__ import annotations

import html
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tremolo.framework import errors
from tremolo.utils import file_signature, html_escape, is_async, parse_fields, parse_int


def test_html_escape_keeps_the_type() -> None:
    assert html_escape('<a href="x">&\'') == "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;"
    assert html_escape(b'<a href="x">&\'') == b"&lt;a href=&quot;x&quot;&gt;&amp;'"


def test_parse_fields_last_first_unquoted() -> None:
    value = b'form-data; name="a"; filename="b%20c.txt"'
    assert list(parse_fields(value)) == [(b"filename", b"b c.txt"), (b"name", b"a"),
                                         (b"form-data", b"")]
    assert list(parse_fields(b"a=1;b=2;c=3", max_fields=2)) == [(b"c", b"3"), (b"b", b"2")]
    assert list(parse_fields(b"gzip, Chunked", b",", b"")) == [b"chunked", b"gzip"]
    with pytest.raises(ValueError):
        list(parse_fields(b"a", b";;"))


@pytest.mark.parametrize("bad", [b"012", b"-1", b"1" * 17, b"", b"1a", b"\xd9\xa3"])
def test_parse_int_is_strict(bad: bytes) -> None:
    with pytest.raises(ValueError):
        parse_int(bad)


def test_parse_int() -> None:
    assert (parse_int(b"0"), parse_int(b"120"), parse_int(b"ff", 16)) == (0, 120, 255)


def test_file_signature_and_is_async(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "f")
    with open(path, "wb") as f:
        f.write(b"abc")
    kind, size, _ = file_signature(path)
    assert size == 3 and kind != 0

    async def coro() -> None: ...

    assert is_async(coro) and not is_async(len)


@given(st.text(alphabet=st.sampled_from("&<>\"'a é;#x27"), max_size=30))
def test_the_native_adapters_escape_is_html_escape(text: str) -> None:
    # (the framework escapes without importing the html module)
    assert errors.escape(text) == html.escape(text)
