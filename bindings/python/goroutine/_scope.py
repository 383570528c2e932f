"""Structured cancellation for Python goroutines: ``gr.cancel_scope()``,
``gr.timeout(seconds)`` and ``gr.Group()``, on the runtime's contexts (``gr_ctx``,
Go's ``context.Context``).

A scope is a context, a child of the calling goroutine's, that the goroutine is
bound to while it is inside the ``with`` block (``gr_ctx_swap``); goroutines started
there (``gr.go``) are bound to it too. Once it is cancelled (by ``cancel()``, by its
deadline, or through an enclosing scope), every parking call of those goroutines,
parked already or made later, returns at once, and the package raises
``gr.Cancelled`` (or ``gr.DeadlineExceeded`` for a deadline) from it: ``gr.sleep``,
channel operations and ``select``, ``join``, socket and fd waits, and so the patched
``time.sleep``, ``socket``, ``select``, ``threading`` locks and events, ``queue``.
(``gr.Mutex`` and ``gr.RWMutex`` are not cancellation points, as in Go.)

The scope that was cancelled by ``cancel()`` swallows the ``Cancelled`` that leaves
its block, as trio's cancel scopes do; a deadline's ``DeadlineExceeded`` (a
``TimeoutError``) goes on, as from trio's ``fail_after``. A ``Group`` is trio's
nursery and Go's errgroup at once: a scope whose members are goroutines; leaving
its block waits for all of them, the first failure cancels the rest, and the
failures are raised (several as an ``ExceptionGroup``).
"""

from __future__ import annotations

import errno as _errno
import math
from ctypes import byref, c_void_p
from typing import Any, Callable, List, Optional, Tuple

from . import Cancelled, DeadlineExceeded, Goroutine, _lib, _running_home

_NS = 1_000_000_000


def _swap(ctx: Optional[int]) -> Optional[int]:
    """Binds the calling goroutine to ``ctx`` (its reference moves to the goroutine)
    and returns its previous context (whose reference moves to the caller)."""
    prev = c_void_p()
    if _lib.ctx_swap(ctx, byref(prev)):
        raise RuntimeError("cancel scopes, timeouts and groups work inside goroutines only (gr.run)")
    return prev.value


def _from_context(e: BaseException) -> bool:
    """An exception a parking call raised for a context's cancellation."""
    return isinstance(e, (Cancelled, DeadlineExceeded))


class CancelScope:
    """A scope of cancellation (see the module docs); made by ``gr.cancel_scope()``
    and ``gr.timeout(seconds)``, entered once with ``with``."""

    __slots__ = ("_ns", "_ctx", "_prev", "_entered", "_cancel_called", "_err", "cancelled_caught")

    def __init__(self, seconds: Optional[float] = None) -> None:
        if seconds is not None and (seconds != seconds or seconds == math.inf):
            if seconds != seconds:
                raise ValueError("timeout is NaN")
            seconds = None
        self._ns = None if seconds is None else max(0, int(seconds * _NS))
        self._ctx: Optional[int] = None
        self._prev: Optional[int] = None
        self._entered = False
        self._cancel_called = False
        self._err = 0
        #: True once leaving the block swallowed the ``Cancelled`` of this scope's
        #: ``cancel()``.
        self.cancelled_caught = False

    def __enter__(self) -> "CancelScope":
        if self._entered:
            raise RuntimeError("a cancel scope can be entered only once")
        parent = _lib.ctx_current()
        c = _lib.ctx_new(parent) if self._ns is None else _lib.ctx_with_timeout(parent, self._ns)
        if not c:
            raise MemoryError("cannot allocate a context")
        try:
            self._prev = _swap(c)
        except BaseException:
            _lib.ctx_free(c)
            raise
        self._entered = True
        self._ctx = c
        if self._cancel_called:
            _lib.ctx_cancel(c)
        return self

    def cancel(self) -> None:
        """Cancels the scope: parking calls inside it (of the goroutine in the block
        and of the goroutines started there) raise ``gr.Cancelled``, at once for
        those parked already. Any goroutine or thread may call it; before the block
        it takes effect when the block is entered, after it nothing happens."""
        self._cancel_called = True
        if self._ctx:
            _lib.ctx_cancel(self._ctx)

    @property
    def cancel_called(self) -> bool:
        """``cancel()`` was called."""
        return self._cancel_called

    @property
    def cancelled(self) -> bool:
        """The scope is cancelled (or was, when it was left): by ``cancel()``, its
        deadline, or an enclosing scope."""
        return (_lib.ctx_err(self._ctx) if self._ctx else self._err) != 0

    @property
    def deadline_exceeded(self) -> bool:
        """Its deadline (or an enclosing one) cancelled the scope."""
        return (_lib.ctx_err(self._ctx) if self._ctx else self._err) == -_errno.ETIMEDOUT

    def __exit__(self, typ: Any, exc: Optional[BaseException], tb: Any) -> bool:
        c = self._ctx
        if not c:
            raise RuntimeError("cancel scope left without being entered")
        cur = _swap(self._prev)
        if cur != c:
            _swap(cur)  # put back what we found: the caller broke the nesting
            raise RuntimeError(
                "cancel scopes must be left by the goroutine that entered them, innermost first"
            )
        self._ctx = None
        self._err = _lib.ctx_err(c)
        outer = _lib.ctx_err(self._prev) if self._prev else 0
        _lib.ctx_free(c)
        if (
            exc is not None
            and isinstance(exc, Cancelled)
            and self._cancel_called
            and outer == 0
        ):
            self.cancelled_caught = True
            return True
        return False

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else "active" if self._ctx else "idle"
        return f"<CancelScope {state}>"


def cancel_scope() -> CancelScope:
    """``with gr.cancel_scope() as scope:``: a scope that ``scope.cancel()`` cancels;
    leaving it swallows the ``gr.Cancelled`` that its own ``cancel()`` caused (but
    not one of an enclosing scope, which that scope swallows)."""
    return CancelScope()


def timeout(seconds: Optional[float]) -> CancelScope:
    """``with gr.timeout(seconds):``: parking calls inside raise
    ``gr.DeadlineExceeded`` (a ``TimeoutError``) once ``seconds`` have passed (<= 0:
    at once; None or inf: never), as trio's ``fail_after``. Nested deadlines: the
    earliest wins. The scope has ``cancel()`` too."""
    return CancelScope(seconds)


class Group:
    """``with gr.Group() as g: g.go(fn, *args, **kw)``: a nursery (trio) or errgroup
    (Go). The block and the members run in one cancel scope. Leaving the block waits
    for every member (without being cancellable itself: no member outlives it). The
    first member (or the block) that raises cancels the scope, so the others'
    parking calls raise ``gr.Cancelled``; those are dropped, and the failure is
    raised, or several as an ``ExceptionGroup`` (``BaseExceptionGroup`` when one is
    not an ``Exception``), in the order they happened. ``g.cancel()`` cancels every
    member and the block, and the group then ends quietly. Cancellation from outside
    (an enclosing scope, a deadline) reaches the members too and leaves the group as
    the exception of that scope. ``Group(limit=n)`` runs at most ``n`` members at
    once (Go's ``errgroup.SetLimit``): ``g.go`` parks while ``n`` run, and raises
    ``gr.Cancelled`` if the group is cancelled meanwhile."""

    __slots__ = ("_scope", "_ctx", "_home", "_members", "_errors", "_open", "_slots")

    def __init__(self, limit: Optional[int] = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("a Group's limit must be >= 1 (or None: no limit)")
        from ._sync import Semaphore

        self._slots = Semaphore(limit) if limit is not None else None
        self._scope: Optional[CancelScope] = None
        self._ctx: Optional[int] = None
        self._members: List[Goroutine] = []
        self._errors: List[Tuple[BaseException, bool]] = []
        self._open = False

    def __enter__(self) -> "Group":
        if self._scope is not None:
            raise RuntimeError("a Group can be entered only once")
        self._home = _running_home("gr.Group()")
        scope = CancelScope()
        scope.__enter__()
        self._scope = scope
        self._ctx = scope._ctx
        self._open = True
        return self

    def go(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Goroutine:
        """Starts ``fn(*args, **kw)`` as a member (a goroutine in the group's scope,
        whoever calls this) and returns its handle. Only while the block runs or
        the group waits for its members."""
        if not self._open:
            raise RuntimeError("Group.go() after the group has ended" if self._scope else "Group.go() before `with`")
        if not callable(fn):
            raise TypeError(f"{fn!r} is not callable")
        slots = self._slots
        if slots is not None:
            slots.acquire()  # a member's slot, given back when it ends
        try:
            g = _lib.spawn(self._home.ptr, self._member, (fn, args, kw), {}, None, 0, self._ctx)
        except BaseException:
            if slots is not None:
                slots.release()
            raise
        self._members.append(g)
        return g

    def cancel(self) -> None:
        """Cancels the members and the block (their parking calls raise
        ``gr.Cancelled``); the group then ends without an exception."""
        if self._scope is not None:
            self._scope.cancel()

    def _failed(self, e: BaseException) -> None:
        # Cancelled (or a deadline) after the scope was cancelled is a consequence,
        # not a failure; anything else fails the group and cancels the rest.
        collateral = _from_context(e) and self._ctx is not None and _lib.ctx_err(self._ctx) != 0
        self._errors.append((e, collateral))
        if not collateral and self._ctx:
            _lib.ctx_cancel(self._ctx)

    def _member(self, fn: Callable[..., Any], args: tuple, kw: dict) -> Any:
        try:
            return fn(*args, **kw)
        except BaseException as e:
            self._failed(e)
            raise
        finally:
            if self._slots is not None:
                self._slots.release()

    def __exit__(self, typ: Any, exc: Optional[BaseException], tb: Any) -> bool:
        scope = self._scope
        if scope is None or not self._open:
            raise RuntimeError("Group left without being entered")
        if exc is not None:
            self._failed(exc)
        # Wait for every member with no context bound: the wait itself cannot be
        # cancelled (members are, through the scope), so none outlives the block.
        mine = _swap(None)
        try:
            i = 0
            while i < len(self._members):  # members may start members meanwhile
                try:
                    self._members[i].join()
                except BaseException:  # noqa: B036 - recorded by _member
                    pass
                i += 1
        finally:
            _swap(mine)
            self._open = False
        outer_cancelled = _lib.ctx_err(scope._prev) != 0 if scope._prev else False
        scope.__exit__(None, None, None)
        errors, self._errors = self._errors, []
        self._members.clear()
        failures = [e for e, collateral in errors if not collateral]
        if len(failures) == 1:
            if failures[0] is exc:
                return False
            raise failures[0]
        if failures:
            kind = ExceptionGroup if all(isinstance(e, Exception) for e in failures) else BaseExceptionGroup
            raise kind("%d goroutines of a gr.Group failed" % len(failures), failures)
        if outer_cancelled and errors:
            # The cancellation came from outside: leave as its exception, for the
            # enclosing scope to handle.
            if exc is not None:
                return False
            raise errors[0][0]
        # Quiet end, or cancelled by g.cancel(): swallow the block's Cancelled.
        return exc is not None and isinstance(exc, Cancelled)

    def __repr__(self) -> str:
        return f"<Group members={len(self._members)} {'open' if self._open else 'closed'}>"
