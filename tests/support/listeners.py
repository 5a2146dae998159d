"""Whether anything still listens on a stack's port, asked of the kernel's socket table.

Connecting to find out can be fooled: on loopback, a connect to a free port in the ephemeral range
may be given that same port as its own and connect to itself (seen once in a `make test`, a
stopped stack's AWS port "open"). A listening socket is what a stack that outlived its stop would
leave, and /proc/net/tcp lists those by state.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

LISTEN = "0A"  # the TCP state's code in /proc/net/tcp


def port_of(url: str) -> int:
    """The port a stack's URL names (the stacks always name one: the OS picks it)."""
    port = urlsplit(url).port
    assert port is not None, url
    return port


def listening(url: str) -> bool:
    """Whether a socket listens on `url`'s port (IPv4, as the stacks bind 127.0.0.1)."""
    port = port_of(url)
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state = fields[1], fields[3]
        if state == LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
            return True
    return False
