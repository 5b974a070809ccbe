"""Write to the socket at once when nothing is queued, instead of on the next loop turn.

Twisted's TCP transport never sends in write(): it buffers, registers the socket with
the selector, sends when the loop reports it writable and unregisters it again. That is
two epoll_ctl calls and a loop turn per frame, for every socket of a broadcast: 44 % of
ws-gateway's event loop when fanning out to 1,000 sockets
(bench/profiles/gateway-fanout1000-after.txt: addWriter + doWrite). asyncio's own
transports try the send first; this does the same for daphne's plain-TCP connections
when their buffer is empty, and hands anything unsent, every error and every other case
(TLS, a closing connection, data already queued) to Twisted's own write unchanged.
Installed once, by ws_gateway.asgi.

Upstream gap: Twisted's transports never write in write(), twisted/twisted#5303
("Default transport implementation doesn't write out bytes immediately", open since
2011): https://github.com/twisted/twisted/issues/5303
"""

from __future__ import annotations

from twisted.internet import tcp

_original_write = tcp.Connection.write


def _write(self, data):
    if (
        data
        and not self.TLS
        and self.connected
        and not self.disconnecting
        and not self._writeDisconnected
        and not self.dataBuffer
        and not self._tempDataLen
        and type(data) is bytes
    ):
        sent = self.writeSomeData(data)
        if not isinstance(sent, int) or sent < 0:
            # An error: Twisted's write buffers it and its doWrite reports the loss.
            return _original_write(self, data)
        if sent == len(data):
            return None
        data = data[sent:]
    return _original_write(self, data)


def install() -> None:
    tcp.Connection.write = _write
