"""The unit tier starts no server: no dev stack, no socket that listens, here or in a child process."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.support import child_pids
from tests.unit.conftest import SocketRefused

# /proc/net/tcp's state column: 0A is LISTEN. /proc/net/unix's flags: __SO_ACCEPTCON marks a listener.
_TCP_LISTEN = "0A"
_UNIX_ACCEPTING = 0x10000


def socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets the process `pid` holds open."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed while listing
        if target.startswith("socket:["):
            found.add(target[len("socket:[") : -1])
    return found


def listening_inodes() -> set[str]:
    """The inodes of every listening TCP (v4, v6) and Unix socket this machine's network namespace has."""
    found = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/net/{table}")
        if path.exists():
            for line in path.read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == _TCP_LISTEN:
                    found.add(fields[9])
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 7 and int(fields[3], 16) & _UNIX_ACCEPTING:
            found.add(fields[6])
    return found


def descendants(pid: int) -> set[int]:
    """Every process started under `pid`, children of children too."""
    found = set()
    todo = [pid]
    while todo:
        children = child_pids(todo.pop()) - found
        found |= children
        todo.extend(children)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="reads the process's sockets from /proc (Linux)")
def test_the_unit_tier_has_no_listening_socket_in_this_process_or_any_it_started(app_module) -> None:
    # app_module: the app is imported and its AWS is up (in this process), as for every unit test. A child
    # may exist in a whole run (collecting the infra tier starts CDK's jsii runtime, which talks over
    # pipes), but none serves: the dev stack's embedded AWS would.
    listening = listening_inodes()
    for pid in {os.getpid(), *descendants(os.getpid())}:
        try:
            held = socket_inodes(pid)
        except OSError:
            continue  # ended while we looked
        assert not held & listening, (pid, Path(f"/proc/{pid}/cmdline").read_bytes())


def test_binding_or_listening_fails_loudly_in_the_unit_tier() -> None:
    with socket.socket() as sock, pytest.raises(SocketRefused):
        sock.bind(("127.0.0.1", 0))
    with socket.socket() as sock, pytest.raises(SocketRefused):
        sock.listen()


def test_the_check_sees_a_listening_socket() -> None:
    # The check above can fail: a socket that listens (bound through the C type, past the guard) is found.
    with socket.socket() as sock:
        socket.SocketType.bind(sock, ("127.0.0.1", 0))
        socket.SocketType.listen(sock)
        assert socket_inodes(os.getpid()) & listening_inodes()
