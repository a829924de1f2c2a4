"""The address of a tf.data service dispatcher (``data.service``, ``tfspk-data-service``), and waiting for it."""
from __future__ import annotations

import re

from tfspk.errors import ToolError


def service_host_port(address: str) -> str | None:
    """``host:port`` of a tf.data service dispatcher address ``grpc://host:port`` or ``host:port``
    (``data.service``, ``tfspk-data-service --dispatcher``); None if it is not one."""
    match = re.fullmatch(r"(?:grpc://)?([^\s:/]+:[0-9]+)", address)
    return match.group(1) if match else None


def wait_for_service(address: str, timeout: float = 30.0, log=None, every: float = 5.0, what: str = "dispatcher") -> str:
    """Wait until the tf.data service ``address`` (``grpc://host:port`` or ``host:port``) accepts a
    connection; return its ``host:port``. ``log`` gets a progress line every ``every`` s; after
    ``timeout`` s a ToolError names the address and the last reason (TensorFlow itself would wait for
    good on a dead address)."""
    import socket
    import time
    host_port = service_host_port(address)
    if host_port is None:
        raise ToolError(f"expected a {what} address grpc://host:port or host:port, got '{address}'")
    host, port = host_port.rsplit(":", 1)
    every = min(every, max(timeout / 4, 0.5))    # a short deadline still shows that it waits
    started = time.monotonic()
    next_note = started + every
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=min(every, max(timeout, 0.1))):
                return host_port
        except OSError as err:
            reason = err.strerror or str(err) or type(err).__name__
        now = time.monotonic()
        if now - started >= timeout:
            raise ToolError(f"cannot reach the tf.data service {what} at grpc://{host_port} within {timeout:g} s: "
                            f"{reason} (is tfspk-data-service running there? the deadline is data.service_timeout "
                            f"/ --timeout)")
        if log and now >= next_note:
            log(f"waiting for the tf.data service {what} at grpc://{host_port} ({now - started:.0f} of {timeout:g} s: "
                f"{reason})")
            next_note = now + every
        time.sleep(min(0.5, max(0.0, started + timeout - now)))
