"""``Consumer.serve_async``: the asyncio side of serving.

Only asyncio's plumbing lives here (a task per command, a bound on how many
run at once, cancellation). What a handler's result means (a response dict,
a status code, None for a plain 200, an exception for a 500 with its text)
is the core's rule, applied by ``Incoming._answer``; so are the answers to
a handler past its time (``Incoming._time_out``) and to one stopped when
serving is cancelled (``Incoming._stop``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING, Any, Callable

from oc2mqtt import _native

if TYPE_CHECKING:
    from oc2mqtt._native import Consumer, Incoming

# Handlers running at once: the core's limit, as in Consumer.serve.
CONCURRENT_HANDLERS = _native._CONCURRENT_HANDLERS

_log = logging.getLogger("oc2mqtt.python")


async def serve(consumer: Consumer, handler: Callable[[dict[str, Any]], Any]) -> None:
    """Runs ``handler`` for every command until the consumer is closed."""
    slots = asyncio.Semaphore(CONCURRENT_HANDLERS)
    running: set[asyncio.Future[None]] = set()
    try:
        while True:
            await slots.acquire()
            incoming = await consumer.next_async()
            if incoming is None:
                break
            task = asyncio.ensure_future(_handle(incoming, handler, slots))
            running.add(task)
            task.add_done_callback(running.discard)
        # Closed: the handlers already running still answer.
        if running:
            await asyncio.wait(set(running))
    except BaseException:
        # Cancelled (or interrupted): stop the handlers; each answers 500.
        for handling in running:
            handling.cancel()
        if running:
            await asyncio.wait(set(running))
        raise


async def _handle(incoming: Incoming, handler: Callable[[dict[str, Any]], Any], slots: asyncio.Semaphore) -> None:
    work: asyncio.Future[Any] | None = None
    try:
        try:
            result = handler(incoming.command)
            if inspect.isawaitable(result):
                work = asyncio.ensure_future(result)
                limit = incoming._handler_timeout
                done, _ = await asyncio.wait({work}, timeout=limit)
                if not done:
                    # Past the consumer's handler_timeout: stopped, and
                    # answered by the core's rule (500, logged).
                    work.cancel()
                    _time_out(incoming)
                    return
                result = work.result()
        except asyncio.CancelledError:
            if work is not None:
                work.cancel()
            # Stopped before it finished: answered by the core's rule (500, logged).
            _stop(incoming)
            raise
        except Exception as e:
            _answer(incoming, error=e)
        else:
            _answer(incoming, result)
    finally:
        slots.release()


def _time_out(incoming: Incoming) -> None:
    try:
        incoming._time_out()
    except Exception as e:  # as _answer
        _log.warning("cannot answer a command: %s", e)


def _stop(incoming: Incoming) -> None:
    try:
        incoming._stop()
    except Exception as e:  # as _answer
        _log.warning("cannot answer a command: %s", e)


def _answer(incoming: Incoming, result: Any = None, *, error: BaseException | None = None) -> None:
    try:
        incoming._answer(result, error=error)
    except Exception as e:  # as Consumer.serve: a failed answer is logged, serving goes on
        _log.warning("cannot answer a command: %s", e)
