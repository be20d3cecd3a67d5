"""Translation of database errors into domain errors.

Messages carry the error's class (and SQLite's own short message, which names no path), never
``str(exc)`` of a driver error: that can hold SQL, parameters or connection details.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from domain.errors import RegistryUnavailable

# SQLSTATEs that mean "the server is not there for us" rather than "the statement is wrong":
# class 08 (connection exception), 57P01-57P03 (admin/crash shutdown, cannot connect now),
# 53300 (too many connections), 3D000 (the database does not exist).
_UNAVAILABLE_SQLSTATES = ("57P01", "57P02", "57P03", "53300", "3D000")


def _sqlstate(exc: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(state, str):
            return state
        current = current.__cause__ or current.__context__
    return None


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the registry cannot be reached (as opposed to a bad statement)."""
    if isinstance(exc, OSError):  # refused, reset, unreachable, TimeoutError
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
        if isinstance(exc.orig, OSError):
            return True
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError):  # the pool's timeout
        return True
    state = _sqlstate(exc)
    if state is not None and (state.startswith("08") or state in _UNAVAILABLE_SQLSTATES):
        return True
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, asyncpg.InterfaceError | asyncpg.PostgresConnectionError):
            return True
        cause = cause.__cause__
    return False


def unavailable(exc: BaseException) -> RegistryUnavailable:
    detail = type(exc).__name__
    orig = getattr(exc, "orig", None)
    if orig is not None:
        detail = type(orig).__name__
        if type(orig).__module__ == "sqlite3":
            # e.g. "database is locked", "no such table: tenants": no secrets, useful to operators.
            detail = f"{detail}: {orig}"
    state = _sqlstate(exc)
    if state:
        detail = f"{detail} (SQLSTATE {state})"
    return RegistryUnavailable(f"the tenant registry is unavailable: {detail}")


@contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise connection-level failures as ``RegistryUnavailable``; let the rest through."""
    try:
        yield
    except RegistryUnavailable:
        raise
    except (sa_exc.SQLAlchemyError, OSError) as e:
        if is_unavailable(e):
            raise unavailable(e) from e
        raise


@contextmanager
def all_errors_unavailable() -> Iterator[None]:
    """For connecting and pinging: any failure there means the registry is not usable (asyncpg
    raises some connect errors, e.g. a bad password, unwrapped)."""
    try:
        yield
    except RegistryUnavailable:
        raise
    except Exception as e:
        raise unavailable(e) from e
