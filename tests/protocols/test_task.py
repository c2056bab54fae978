"""RequestTask: a handler's task, measured against what asyncio.Task does."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import pytest

from tremolo import _core
from tremolo.protocols.task import RUNNING, RequestTask, cancel_later

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


class Outcome:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, BaseException | None]] = []
        self.ended = asyncio.get_running_loop().create_future()

    def __call__(self, arg: Any, exc: BaseException | None) -> None:
        self.calls.append((arg, exc))
        if not self.ended.done():
            self.ended.set_result(exc)


async def run(coro_fn: Callable[[], Coroutine[Any, Any, Any]],
              from_loop: bool = True) -> tuple[RequestTask, Outcome, bool]:
    """Starts a RequestTask as the protocol does: from a loop callback (no task
    running), or from inside the test's own task; waits (bounded) for its end."""
    loop = asyncio.get_running_loop()
    outcome = Outcome()
    task = RequestTask(loop, coro_fn(), outcome, "arg")
    first: list[bool] = []
    if from_loop:
        loop.call_soon(lambda: first.append(task.start()))
        await asyncio.sleep(0)
    else:
        first.append(task.start())
    await asyncio.wait_for(asyncio.shield(outcome.ended), 5)
    return task, outcome, first[0]


async def test_current_task_from_first_line_to_last() -> None:
    seen: list[Any] = []

    async def handler() -> None:
        seen.append(asyncio.current_task())
        await asyncio.sleep(0.01)
        seen.append(asyncio.current_task())
        await asyncio.sleep(0)  # a bare yield
        seen.append(asyncio.current_task())

    task, outcome, ended_at_once = await run(handler)
    assert seen == [task, task, task]
    assert not ended_at_once and task.done() and not task.cancelled()
    assert outcome.calls == [("arg", None)]
    assert asyncio.current_task() is not task  # left once it ended


async def test_ends_in_its_first_step_without_a_loop_iteration() -> None:
    async def handler() -> None:
        VAR.set("inside")

    task, outcome, ended_at_once = await run(handler)
    assert ended_at_once and outcome.calls == [("arg", None)]
    assert VAR.get() == "unset"  # the task had its own copy of the context
    assert task.get_context().get(VAR) == "inside"


async def test_started_inside_another_task_runs_at_once_and_gives_it_back() -> None:
    outer = asyncio.current_task()
    seen: list[Any] = []

    async def handler() -> None:
        seen.append(asyncio.current_task())
        await asyncio.sleep(0)
        seen.append(asyncio.current_task())

    loop = asyncio.get_running_loop()
    outcome = Outcome()
    task = RequestTask(loop, handler(), outcome, None)
    assert task.start() is False
    assert seen == [task] and asyncio.current_task() is outer
    await asyncio.wait_for(asyncio.shield(outcome.ended), 5)
    assert seen == [task, task]


async def test_errors_are_reported() -> None:
    async def handler() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    task, outcome, _ = await run(handler)
    exc = outcome.calls[0][1]
    assert isinstance(exc, ValueError) and task.exception() is exc
    with pytest.raises(ValueError):
        task.result()


async def test_cancel_while_waiting_and_a_swallowed_cancel() -> None:
    steps: list[str] = []

    async def handler() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError as exc:
            steps.append(f"cancelled: {exc.args}")
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        await asyncio.sleep(0)
        steps.append("went on")

    loop = asyncio.get_running_loop()
    outcome = Outcome()
    task = RequestTask(loop, handler(), outcome, None)
    loop.call_soon(task.start)
    await asyncio.sleep(0.01)
    assert task.cancel("stop") and task.cancelling() == 1
    await asyncio.wait_for(asyncio.shield(outcome.ended), 5)
    assert steps == ["cancelled: ('stop',)", "went on"]
    assert outcome.calls == [(None, None)] and not task.cancelled()
    assert task.cancel() is False  # done: nothing to cancel


async def test_cancel_ends_it_cancelled() -> None:
    async def handler() -> None:
        await asyncio.sleep(10)

    loop = asyncio.get_running_loop()
    outcome = Outcome()
    task = RequestTask(loop, handler(), outcome, None)
    loop.call_soon(task.start)
    await asyncio.sleep(0.01)
    task.cancel()
    exc = await asyncio.wait_for(asyncio.shield(outcome.ended), 5)
    assert isinstance(exc, asyncio.CancelledError) and task.cancelled()
    with pytest.raises(asyncio.CancelledError):
        task.exception()


async def test_self_cancel_is_delivered_at_the_next_wait() -> None:
    async def handler() -> None:
        asyncio.current_task().cancel()  # type: ignore[union-attr]
        await asyncio.sleep(10)

    task, outcome, _ = await run(handler)
    assert isinstance(outcome.calls[0][1], asyncio.CancelledError) and task.cancelled()


async def test_asyncio_timeout_and_taskgroup_as_in_a_task() -> None:
    def handler(results: list[Any]) -> Callable[[], Coroutine[Any, Any, None]]:
        async def handle() -> None:
            try:
                async with asyncio.timeout(0.05):
                    await asyncio.sleep(10)
            except TimeoutError:
                results.append("timed out")
            async with asyncio.TaskGroup() as tg:
                a = tg.create_task(asyncio.sleep(0.01, "a"))
                b = tg.create_task(asyncio.sleep(0.02, "b"))
            results.append(a.result() + b.result())
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(asyncio.sleep(10))
                    tg.create_task(_fail_soon())
            except ExceptionGroup:
                results.append("group failed")
            results.append(asyncio.current_task().cancelling())  # type: ignore[union-attr]

        return handle

    results: list[Any] = []
    _, outcome, _ = await run(handler(results))
    assert outcome.calls[0][1] is None
    # the same handler in an asyncio.Task, for what asyncio itself does
    expected: list[Any] = []
    await asyncio.wait_for(asyncio.create_task(handler(expected)()), 5)
    assert results == expected
    assert results[:3] == ["timed out", "ab", "group failed"]


async def _fail_soon() -> None:
    await asyncio.sleep(0.01)
    raise RuntimeError("child failed")


async def test_anyio_cancel_scopes_threads_and_task_groups() -> None:
    results: list[Any] = []

    async def handler() -> None:
        with anyio.move_on_after(0.05) as scope:
            await anyio.sleep(10)
        results.append(scope.cancelled_caught)
        results.append(await anyio.to_thread.run_sync(lambda: "from a thread"))
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.sleep, 0.01)
        with anyio.fail_after(5):
            await anyio.sleep(0)
        results.append(anyio.get_current_task().name)

    task, outcome, _ = await run(handler)
    assert outcome.calls[0][1] is None
    assert results == [True, "from a thread", task.get_name()]


async def test_done_callbacks_run_after_the_end() -> None:
    loop = asyncio.get_running_loop()
    got = loop.create_future()

    async def handler() -> None:
        asyncio.current_task().add_done_callback(  # type: ignore[union-attr]
            lambda t: got.set_result(t.done()))
        await asyncio.sleep(0)

    task, _, _ = await run(handler)
    assert await asyncio.wait_for(got, 5) is True
    calls: list[Any] = []
    task.add_done_callback(calls.append)  # already done: called soon
    await asyncio.sleep(0)
    assert calls == [task]


async def test_bad_yields_are_thrown_back() -> None:
    other = asyncio.new_event_loop()
    try:
        foreign = other.create_future()

        async def handler() -> None:
            with pytest.raises(RuntimeError, match="another loop"):
                await foreign
            raise LookupError("done")

        _, outcome, _ = await run(handler)
        assert isinstance(outcome.calls[0][1], LookupError)
    finally:
        other.close()


async def test_run_first_leaves_the_end_to_its_caller() -> None:
    # what the protocol uses: an end in the first step is returned, not told to
    # `done`, so a request answered at once costs no call back
    loop = asyncio.get_running_loop()

    async def answers() -> int:
        return 1

    async def fails() -> None:
        raise ValueError("bad")

    async def waits() -> None:
        await asyncio.sleep(0)

    calls: list[tuple[Any, BaseException | None]] = []

    def done(arg: Any, exc: BaseException | None) -> None:
        calls.append((arg, exc))

    clean = RequestTask(loop, answers(), done, "a")
    assert clean.run_first() is None and clean.done() and calls == []
    failed = RequestTask(loop, fails(), done, "b")
    error = failed.run_first()
    assert isinstance(error, ValueError) and failed.done() and calls == []
    with pytest.raises(ValueError):
        failed.result()
    running = RequestTask(loop, waits(), done, "c")
    assert running.run_first() is RUNNING and not running.done()
    for _ in range(10):
        if calls:
            break
        await asyncio.sleep(0)
    assert calls == [("c", None)] and running.done()


# -- Signal: the one-shot Future a RequestTask waits on (rust/src/py/signal.rs) -------


async def test_a_signal_wakes_its_request_task_from_the_loop_or_at_once() -> None:
    loop = asyncio.get_running_loop()
    signals: list[Any] = []
    seen: list[str] = []

    async def handler() -> None:
        VAR.set("the handler's")
        for _ in range(2):
            signal = _core.signal(loop)
            signals.append(signal)
            await signal
            seen.append(VAR.get())  # woken in the task's own context

    outcome = Outcome()
    task = RequestTask(loop, handler(), outcome, "arg")
    loop.call_soon(task.start)
    await asyncio.sleep(0)
    assert len(signals) == 1 and task._fut_waiter is signals[0]
    signals[0].set()  # from the loop: the task goes on at its next turn
    assert seen == [] and signals[0].done() and not signals[0].cancelled()
    for _ in range(3):
        await asyncio.sleep(0)
    assert seen == ["the handler's"] and len(signals) == 2
    # set(now=True) from outside any task: the task's step runs before set() returns
    done: list[bool] = []
    loop.call_soon(lambda: (signals[1].set(True), done.append(bool(seen[1:]))))
    await asyncio.wait_for(asyncio.shield(outcome.ended), 5)
    assert done == [True] and outcome.calls == [("arg", None)]
    signals[1].set()  # a second set does nothing
    assert signals[1].result() is None and signals[1].exception() is None


async def test_set_now_from_inside_a_task_waits_for_the_loop() -> None:
    loop = asyncio.get_running_loop()
    signal = _core.signal(loop)
    woke: list[bool] = []

    async def handler() -> None:
        await signal
        woke.append(True)

    outcome = Outcome()
    task = RequestTask(loop, handler(), outcome, "arg")
    loop.call_soon(task.start)
    await asyncio.sleep(0)
    signal.set(True)  # this test's task is running: not now, from the loop
    assert woke == []
    await asyncio.wait_for(asyncio.shield(outcome.ended), 5)
    assert woke == [True]


async def test_cancelling_a_task_waiting_on_a_signal() -> None:
    loop = asyncio.get_running_loop()
    signal = _core.signal(loop)

    async def handler() -> None:
        await signal

    outcome = Outcome()
    task = RequestTask(loop, handler(), outcome, "arg")
    loop.call_soon(task.start)
    await asyncio.sleep(0)
    assert task.cancel("stop")
    exc = await asyncio.wait_for(asyncio.shield(outcome.ended), 5)
    assert isinstance(exc, asyncio.CancelledError) and task.cancelled()
    assert signal.cancelled() and signal.done()
    with pytest.raises(asyncio.CancelledError):
        signal.result()
    assert not signal.cancel() and not task.cancel()


async def test_a_signal_is_a_future_to_asyncio() -> None:
    loop = asyncio.get_running_loop()
    # awaited by an asyncio.Task (wait_for runs its own): set, and timed out
    signal = _core.signal(loop)
    loop.call_later(0.01, signal.set)
    assert await asyncio.wait_for(signal, 5) is None
    slow = _core.signal(loop)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(slow, 0.01)
    assert slow.cancelled()
    # done callbacks, with their contexts, once it is done; removed ones are not run
    calls: list[tuple[str, Any]] = []
    other = _core.signal(loop)
    assert other.get_loop() is loop and not other.done()
    with pytest.raises(RuntimeError):
        other.result()  # not set yet

    def gone(s: Any) -> None:
        calls.append(("removed", s))

    other.add_done_callback(lambda s: calls.append((VAR.get(), s)),
                            context=contextvars.Context())
    other.add_done_callback(gone)
    assert other.remove_done_callback(gone) == 1
    other.set()
    await asyncio.sleep(0)
    assert calls == [("unset", other)]
    other.add_done_callback(lambda s: calls.append(("late", s)))  # already done: soon
    await asyncio.sleep(0)
    assert calls[-1] == ("late", other)


async def test_a_signal_awaited_wrongly() -> None:
    loop = asyncio.get_running_loop()
    signal = _core.signal(loop)
    it = signal.__await__()
    assert next(it) is signal  # yields itself while pending, as a Future does
    with pytest.raises(RuntimeError, match="await wasn't used with future"):
        next(it)
    # a RequestTask refuses a signal of another loop, as a Task refuses its futures
    other_loop = asyncio.new_event_loop()
    try:
        foreign = _core.signal(other_loop)

        async def handler() -> None:
            await foreign

        _, outcome, _ = await run(handler)
        assert isinstance(outcome.calls[0][1], RuntimeError)
        assert "another loop" in str(outcome.calls[0][1])
    finally:
        other_loop.close()


async def test_a_planned_cancel_goes_with_the_task_that_ends_first() -> None:
    """Every closed WebSocket whose handler was still waiting planned a cancel for
    app_close_timeout; the handler ended at once, but its timer stayed for 30 s
    (under churn, 40,000 timers and 44 MB)."""
    loop = asyncio.get_running_loop()
    timers: list[asyncio.TimerHandle] = []
    real = loop.call_later

    def call_later(delay: float, *args: Any) -> asyncio.TimerHandle:
        timers.append(real(delay, *args))
        return timers[-1]

    ended = loop.create_task(asyncio.sleep(0.01))
    waiting = loop.create_task(asyncio.sleep(60))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "call_later", call_later)
        cancel_later(loop, 30, ended)
        cancel_later(loop, 0.02, waiting)
    await ended
    await asyncio.sleep(0.05)
    assert timers[0].cancelled()  # gone with its task
    assert waiting.cancelled()  # the other still does its work
