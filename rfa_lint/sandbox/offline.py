"""No downloads while user code builds models: network access fails at once, and is recorded.

Models are built to be read, never run, so pretrained weights are never needed; a download
would make a lint slow, flaky offline, and dependent on the network.  Inside :func:`no_network`
every connection and name lookup raises :class:`DownloadBlocked`, a ``ConnectionError``, so
libraries fail (or fall back) exactly as they do on a machine without network.  Each attempt
is recorded under the best name at hand, even when a library swallows the error: the URL when
it went through ``urllib.request`` (as ``torch.hub`` and keras' ``get_file`` do), else
``host:port``.

Unix-domain sockets pass this guard: they cannot leave the machine.  (The kernel's filter
refuses all but connected pairs, which ``multiprocessing`` uses, before user code runs:
:func:`.isolation.restrict_calls`.)  Loopback is blocked too: a local proxy or
mirror is still a download, a local service is a side effect a linter must not have, and a
result must not depend on what happens to listen on the machine.

This is not the boundary: the child's network namespace, with no route anywhere, and Landlock
are (:mod:`.isolation`); sockets opened from C (libcurl, gRPC) and programs the user code starts
get through this guard.  Its job is to *name* what a model tried to download, for RFA914's
message, and to fail it at once, where the kernel's isolation would fail it just as well.
"""

from __future__ import annotations

import contextlib
import socket
import urllib.parse
import urllib.request
from typing import Any, Callable, Iterator, NoReturn

#: URL schemes ``urllib.request`` opens without a network (no scheme: it refuses those itself).
LOCAL_SCHEMES = ("", "file", "data")
MAX_ATTEMPTS = 100  # a library retrying in a loop must not grow the record without bound


class DownloadBlocked(ConnectionError):
    """Network access while rfa-lint builds models (it never downloads anything)."""


class NetworkLog:
    """The network accesses user code attempted while blocked, first attempt first."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def block(self, name: str) -> NoReturn:
        if len(self.attempts) < MAX_ATTEMPTS:
            self.attempts.append(name)
        raise DownloadBlocked(f"rfa-lint builds models without network access (tried {name})")


_INHERITED = object()  # marks a method a class does not define itself, only inherits


@contextlib.contextmanager
def no_network() -> Iterator[NetworkLog]:
    """Block network access for the whole process (every thread) until the block ends; yields
    the :class:`NetworkLog` of what was tried.  Everything patched is restored on exit."""
    log = NetworkLog()
    guards = _guards(log)
    saved = [(owner, name, vars(owner).get(name, _INHERITED)) for owner, name, _ in guards]
    try:
        for owner, name, guard in guards:
            setattr(owner, name, guard)
        yield log
    finally:
        for owner, name, original in reversed(saved):
            if original is _INHERITED:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def _guards(log: NetworkLog) -> list[tuple[Any, str, Callable]]:
    """(owner, attribute, stand-in) for every way into the network that is blocked."""
    return [
        *((socket.socket, method, _guard_socket(getattr(socket.socket, method), log))
          for method in ("connect", "connect_ex", "sendto")),
        (socket, "create_connection", _refuse(log, lambda address, *args, **kwargs: _address_name(address))),
        (socket, "getaddrinfo", _refuse(log, lambda host, port, *args, **kwargs: _host_port(host, port))),
        (socket, "gethostbyname", _refuse(log, lambda host: _host_port(host, None))),
        (socket, "gethostbyname_ex", _refuse(log, lambda host: _host_port(host, None))),
        (urllib.request.OpenerDirector, "open", _guard_urllib(urllib.request.OpenerDirector.open, log)),
    ]


def _refuse(log: NetworkLog, name_of: Callable[..., str]) -> Callable[..., NoReturn]:
    """A stand-in that refuses every call; ``name_of`` takes the call's arguments and names it."""
    def refused(*args: Any, **kwargs: Any) -> NoReturn:
        log.block(name_of(*args, **kwargs))

    return refused


def _guard_socket(original: Callable, log: NetworkLog) -> Callable:
    """A socket method whose last argument is an address: refused unless the socket is AF_UNIX."""
    def guarded(sock: socket.socket, *args: Any) -> Any:
        if args and sock.family != socket.AF_UNIX:
            log.block(_address_name(args[-1]))
        return original(sock, *args)

    return guarded


def _guard_urllib(original: Callable, log: NetworkLog) -> Callable:
    """``OpenerDirector.open`` (what ``urlopen`` calls): local URLs open, any other is refused by
    its URL before a socket is made."""
    def guarded(opener: urllib.request.OpenerDirector, url: Any, *args: Any, **kwargs: Any) -> Any:
        full_url = url if isinstance(url, str) else getattr(url, "full_url", str(url))
        if urllib.parse.urlsplit(full_url).scheme.lower() not in LOCAL_SCHEMES:
            log.block(full_url)
        return original(opener, url, *args, **kwargs)

    return guarded


def _address_name(address: Any) -> str:
    """``host:port`` for an internet address (``[::1]:443`` for IPv6), else the address as given."""
    if isinstance(address, tuple) and len(address) >= 2:
        return _host_port(address[0], address[1])
    return str(address)


def _host_port(host: Any, port: Any) -> str:
    host = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    host = f"[{host}]" if ":" in host else host
    return host if port is None else f"{host}:{port}"
