"""The core's WebSocket codec against wsproto as the oracle: what a wsproto client
sends is what tremolo decodes (at any read split), and what tremolo sends is what
wsproto reads, with and without permessage-deflate."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import FrameProtocol, Opcode

from tremolo import _core

DEFLATE = (True, False, 12, 15)
messages = st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=300)),
                    min_size=1, max_size=8)


def client(deflate: bool) -> FrameProtocol:
    ext: list[Any] = []
    if deflate:
        pmd = PerMessageDeflate()
        pmd.finalize("permessage-deflate")
        ext = [pmd]
    return FrameProtocol(client=True, extensions=ext)


def server_reader(deflate: bool) -> FrameProtocol:
    ext: list[Any] = []
    if deflate:
        pmd = PerMessageDeflate()
        pmd.finalize("permessage-deflate; server_max_window_bits=12")
        ext = [pmd]
    return FrameProtocol(client=True, extensions=ext)  # a client reads server frames


def decode(codec: _core.WebSocketCodec, wire: bytes, cuts: list[int],
           room: int | None = None) -> list[Any]:
    """The events of `wire` fed in pieces; with `room`, each feed within it, and fed
    again (with nothing new) while the codec holds some, as the protocol does when
    its queue has room again."""
    events: list[Any] = []
    last = 0
    for cut in [*sorted(set(cuts)), len(wire)]:
        out, _ = codec.feed(wire[last:cut], room)
        events += out
        while held := codec.held:
            assert room, "only a bounded feed holds anything"
            out, _ = codec.feed(b"", room)
            assert codec.held < held, "a feed with room makes progress"
            events += out
        last = cut
    return events


def assemble(events: list[Any]) -> list[str | bytes]:
    """Whole messages from events (fragments joined)."""
    out: list[str | bytes] = []
    parts: bytearray | None = None
    text = False
    for ev in events:
        if isinstance(ev, str | bytes):
            out.append(ev)
        elif isinstance(ev, _core.Frame) and ev.opcode in (0, 1, 2):
            if parts is None:
                parts, text = bytearray(), ev.opcode == 1
            parts += ev.data
            if ev.fin:
                out.append(parts.decode() if text else bytes(parts))
                parts = None
    return out


@settings(max_examples=150, deadline=None)
@given(msgs=messages, deflate=st.booleans(), fragment=st.integers(0, 50),
       cuts=st.lists(st.integers(0, 4000), max_size=6),
       room=st.one_of(st.none(), st.integers(1, 400)))
def test_decodes_what_wsproto_sends(msgs: list[str | bytes], deflate: bool, fragment: int,
                                    cuts: list[int], room: int | None) -> None:
    proto = client(deflate)
    wire = bytearray()
    for m in msgs:
        if fragment and len(m) > fragment:
            # wsproto continues a message with send_data(..., fin=False)
            wire += proto.send_data(m[:fragment], fin=False)
            wire += proto.ping(b"between")
            wire += proto.send_data(m[fragment:], fin=True)
        else:
            wire += proto.send_data(m, fin=True)
    codec = _core.WebSocketCodec(1 << 20, DEFLATE if deflate else None)
    events = decode(codec, bytes(wire), [c % (len(wire) + 1) for c in cuts], room)
    assert not any(isinstance(e, _core.WebSocketError) for e in events), events
    assert assemble(events) == msgs


@settings(max_examples=150, deadline=None)
@given(msgs=messages, deflate=st.booleans())
def test_wsproto_reads_what_tremolo_sends(msgs: list[str | bytes], deflate: bool) -> None:
    codec = _core.WebSocketCodec(1 << 20, DEFLATE if deflate else None)
    reader = server_reader(deflate)
    reader.receive_bytes(b"".join(codec.send(m) for m in msgs))
    got = []
    for frame in reader.received_frames():
        assert frame.message_finished
        got.append(frame.payload if frame.opcode is Opcode.TEXT else bytes(frame.payload))
    assert got == msgs


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), cut=st.integers(0, 200), deflate=st.booleans())
def test_arbitrary_bytes_give_events_or_one_error(data: bytes, cut: int, deflate: bool) -> None:
    whole = _core.WebSocketCodec(1000, DEFLATE if deflate else None).feed(data)[0]
    split = decode(_core.WebSocketCodec(1000, DEFLATE if deflate else None), data, [cut])
    errors = [e for e in whole if isinstance(e, _core.WebSocketError)]
    assert len(errors) <= 1 and (not errors or whole[-1] is errors[0])
    assert [type(e) for e in split] == [type(e) for e in whole]
    if errors:
        assert errors[0].close_code in (1002, 1007, 1009)


def test_close_and_protocol_errors_are_answered_by_the_caller() -> None:
    proto = client(False)
    codec = _core.WebSocketCodec(1000)
    events, reply = codec.feed(bytes(proto.close(4000, "bye")))
    assert events[0].opcode == 8 and (events[0].code, events[0].reason) == (4000, "bye")
    assert reply is None  # the caller answers once it is done with what came before
    assert codec.close_received and not codec.close_sent
    assert codec.send("still allowed") == b"\x81\x0dstill allowed"
    assert codec.close(4000) == b"\x88\x02\x0f\xa0"  # the code echoed
    assert codec.close(1000) == b""  # once
    with pytest.raises(RuntimeError):
        codec.send("after close")
    codec = _core.WebSocketCodec(1000)
    events, reply = codec.feed(b"\x81\x01x" + bytes(proto.ping(b"p")))  # unmasked, then more
    assert reply is None and len(events) == 1
    err = events[0]
    assert isinstance(err, _core.WebSocketError) and err.close_code == 1002
    assert codec.close(err.close_code, err.reason)[2:4] == b"\x03\xea"
    codec = _core.WebSocketCodec(1000)
    assert codec.feed(bytes(proto.ping(b"hi"))) == ([codec_ping(b"hi")], b"\x8a\x02hi")


def codec_ping(data: bytes) -> Any:
    """What a ping event looks like, for comparison."""
    class Ping:
        def __eq__(self, other: object) -> bool:
            return isinstance(other, _core.Frame) and other.opcode == 9 and other.data == data
    return Ping()


def test_handshake_helpers() -> None:
    assert _core.ws_accept(b"dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert _core.ws_accept(b"too short") is None
    # the server compresses each message on its own, and says so
    assert _core.ws_negotiate([b"permessage-deflate; client_max_window_bits"]) == \
        ("permessage-deflate; server_no_context_takeover", (True, False, 12, 15))
    assert _core.ws_negotiate([b"permessage-deflate; server_max_window_bits=8"]) is None
    assert _core.ws_negotiate([b"x-webkit-deflate-frame"]) is None
