"""tremolo's parser against h11 as an oracle.

On well-formed requests both must agree on every field. On each kind of malformed
request tremolo must refuse; where h11 accepts, the difference must be one of the
deliberate divergences listed here and in docs/http.md.
"""

from __future__ import annotations

from collections.abc import Callable

import h11
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..helpers import run_parser
from ..strategies import Request, requests

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def h11_parse(data: bytes) -> tuple[h11.Request, bytes] | int:
    """h11's reading: (request, body), or the status it would answer."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    conn.receive_data(b"")
    request, body = None, b""
    try:
        while True:
            ev = conn.next_event()
            if isinstance(ev, h11.Request):
                request = ev
            elif isinstance(ev, h11.Data):
                body += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                assert request is not None
                return request, body
            elif ev is h11.NEED_DATA or ev is h11.PAUSED:
                return 0
    except h11.RemoteProtocolError as exc:
        return exc.error_status_hint


@SETTINGS
@given(requests(keep_alive=False))
def test_agrees_with_h11_on_well_formed_requests(req: Request) -> None:
    data = req.to_bytes()
    oracle = h11_parse(data)
    ours = run_parser([data])
    assert not isinstance(oracle, int), f"h11 refused a generated request: {oracle}"
    assert ours.error is None
    h11_req, h11_body = oracle
    [got] = ours.requests
    assert got.method == h11_req.method
    assert got.target == h11_req.target
    assert got.version == h11_req.http_version.decode()
    assert got.headers == list(h11_req.headers)
    assert got.body == h11_body


def _head_edit(f: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        head, sep, rest = data.partition(b"\r\n\r\n")
        return f(head) + sep + rest
    return edit


def _add_field(line: bytes) -> Callable[[bytes], bytes]:
    return _head_edit(lambda head: head + b"\r\n" + line)


# Each kind of malformed request, with the status tremolo answers.
PERTURBATIONS: dict[str, tuple[Callable[[bytes], bytes], int]] = {
    "bare_lf": (_head_edit(lambda h: h.replace(b"\r\n", b"\n", 1)), 400),
    "obs_fold": (_add_field(b"X-Folded: a\r\n  b"), 400),
    "space_before_colon": (_add_field(b"X-Name : v"), 400),
    "control_in_value": (_add_field(b"X-Ctl: a\x01b"), 400),
    "nul_in_value": (_add_field(b"X-Nul: a\x00b"), 400),
    "cl_and_te": (_add_field(b"Content-Length: 0\r\nTransfer-Encoding: chunked"), 400),
    "differing_cl": (_add_field(b"Content-Length: 1\r\nContent-Length: 2"), 400),
    "te_not_chunked": (_add_field(b"Transfer-Encoding: gzip"), 400),
    "te_gzip_chunked": (_add_field(b"Transfer-Encoding: gzip, chunked"), 501),
    "unknown_expect": (_add_field(b"Expect: teapot"), 417),
    "host_with_path": (_add_field(b"Host: a/b"), 400),
    "second_host": (_add_field(b"Host: b"), 400),
    "fragment": (lambda d: d.replace(b" HTTP/1.1\r\n", b"#frag HTTP/1.1\r\n", 1), 400),
    "bad_version": (lambda d: d.replace(b" HTTP/1.1\r\n", b" HTTP/1.1.0\r\n", 1), 400),
    "http2_version": (lambda d: d.replace(b" HTTP/1.1\r\n", b" HTTP/2.0\r\n", 1), 505),
}

# Where h11 accepts what tremolo refuses, on purpose (docs/http.md says why).
H11_MORE_LENIENT = {"bare_lf", "obs_fold", "control_in_value", "unknown_expect",
                    "host_with_path", "fragment", "http2_version"}


@SETTINGS
@given(requests(version="1.1", keep_alive=False, with_body=False),
       st.sampled_from(sorted(PERTURBATIONS)))
def test_malformed_requests_are_refused(req: Request, kind: str) -> None:
    edit, status = PERTURBATIONS[kind]
    data = edit(req.to_bytes())
    ours = run_parser([data])
    assert ours.error == status, f"{kind}: {data!r}"
    oracle = h11_parse(data)
    if not isinstance(oracle, int) or oracle == 0:
        assert kind in H11_MORE_LENIENT, f"h11 accepts {kind} but it is not a listed divergence"
