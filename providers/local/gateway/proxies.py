"""Which proxy processes a gateway has, and stopping them all.

A proxy runs `python -m mlform.providers.local.gateway.proxy DIR FD`: its command line
names the gateway's directory, so every proxy ever started for a gateway is found by
it, the recorded one (`server.json`) and any other (an apply killed between starting a
proxy and recording it). The recorded one is the proxy whose pid the record holds.

The record's `create_time` is not used to recognise the proxy: psutil computes a
process's create time from the boot time as the wall clock has it now, which moves
when the clock is stepped (NTP, a VM's time sync), so a live proxy would read as gone
and be left running, with its directory removed, by the destroy that should stop it.
A pid reused by another program cannot carry this command line. The endpoint's
servers are recognised the same way, by the same code (`..serving.process`).
"""

from __future__ import annotations

from pathlib import Path

import psutil

from ..serving import process

PROXY_MODULE = "mlform.providers.local.gateway.proxy"


def running(directory: Path) -> list[psutil.Process]:
    """Every live proxy of the gateway whose files are in `directory` (which need not
    exist any more)."""
    return process.running(directory, PROXY_MODULE)


def recorded(directory: Path, record: process.ServerRecord | None) -> psutil.Process | None:
    """The proxy the record names, if it runs."""
    return process.recorded(directory, record, PROXY_MODULE)


def stop_all(directory: Path, timeout: float) -> list[int]:
    """Stop every proxy of the gateway (each with its process group: SIGTERM, then
    SIGKILL after `timeout`); the pids stopped. Raises TimeoutError naming those still
    running after that."""
    return process.stop_all(directory, timeout, PROXY_MODULE, "proxy")
