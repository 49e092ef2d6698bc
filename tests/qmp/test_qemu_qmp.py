#!/usr/bin/env python3
"""QEMU's own QMP clients against breadboard: `qemu.qmp`'s QMPClient and `qmp-shell`.

Run with pytest or directly (`python3 tests/qmp/test_qemu_qmp.py`). Needs `pip install
qemu.qmp` and a built breadboard (BREADBOARD_BIN, else target/release or target/debug).
crates/qmp/tests/python.rs runs this file from `cargo test`.
"""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

from qemu.qmp import EventListener, ExecuteError, QMPClient

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "tests" / "qmp" / "seed.qmp"
ECHO32 = REPO / "firmware" / "echo32" / "echo32.elf"


def binary():
    env = os.environ.get("BREADBOARD_BIN")
    if env:
        return Path(env)
    for profile in ("release", "debug"):
        p = REPO / "target" / profile / "breadboard"
        if p.exists():
            return p
    return None


def wait_for_socket(path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(path).exists():
            return
        time.sleep(0.01)
    raise TimeoutError(f"{path} never appeared")


class Breadboard:
    """breadboard -M none -cpu lowrisc-ibex -kernel echo32.elf -preconfig, QMP and serial on
    Unix sockets in a temporary directory."""

    def __init__(self, extra=()):
        self.dir = tempfile.mkdtemp(prefix="bb-qemu-qmp-")
        self.qmp = os.path.join(self.dir, "qmp.sock")
        self.serial = os.path.join(self.dir, "serial.sock")
        args = [
            str(binary()), "-M", "none", "-cpu", "lowrisc-ibex", "-kernel", str(ECHO32),
            "-serial", f"unix:{self.serial},server=on,wait=off",
            "-preconfig", "-qmp", f"unix:{self.qmp},server=on,wait=off", *extra,
        ]
        self.proc = subprocess.Popen(args, cwd=REPO, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.uart = None
        try:
            wait_for_socket(self.qmp)
            # Connect to the UART now: a socket chardev drops output nobody reads, and the
            # firmware greets as soon as the machine is ready.
            self.uart = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.uart.settimeout(20)
            self.uart.connect(self.serial)
        except (TimeoutError, OSError):
            self.close()
            raise

    def serial_echo(self, text):
        """Sends `text` then '?' over the UART; returns everything read back."""
        s = self.uart
        got = b""
        while b"ready\r\n" not in got:
            got += s.recv(256)
        s.sendall(text.encode())
        while not got.endswith(text.encode()):
            got += s.recv(256)
        s.sendall(b"?")
        while not (b"irqs=" in got and got.endswith(b"\r\n")):
            got += s.recv(256)
        return got.decode()

    def close(self):
        if self.uart is not None:
            self.uart.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def supported():
    if binary() is None:
        return "no breadboard binary (build the workspace or set BREADBOARD_BIN)"
    r = subprocess.run([str(binary()), "-M", "none", "-preconfig", "-qmp",
                        "unix:/nonexistent-dir/q.sock,server=on,wait=off"],
                       capture_output=True, text=True, timeout=30)
    if "not supported by this version" in r.stderr:
        return "this breadboard does not serve QMP yet"
    return None


SKIP = supported()


@unittest.skipIf(SKIP is not None, SKIP or "")
class QemuQmpTest(unittest.TestCase):
    def test_qmpclient_session(self):
        bb = Breadboard()
        try:
            asyncio.run(self._session(bb))
        finally:
            bb.close()

    async def _session(self, bb):
        qmp = QMPClient("breadboard")
        await qmp.connect(bb.qmp)
        version = qmp.greeting.QMP.version
        package = version["package"] if isinstance(version, dict) else version.package
        self.assertTrue(package.startswith("breadboard "), package)
        status = await qmp.execute("query-status")
        self.assertEqual(status, {"status": "prelaunch", "singlestep": False, "running": False})
        props = await qmp.execute("device-list-properties", {"typename": "ibex-uart"})
        self.assertIn("chardev", [p["name"] for p in props])
        with self.assertRaises(ExecuteError) as e:
            await qmp.execute("no-such-command")
        self.assertEqual(e.exception.error_class, "CommandNotFound")
        with self.assertRaises(ExecuteError) as e:
            await qmp.execute("qom-get", {"path": "/machine/nothere", "property": "type"})
        self.assertEqual(e.exception.error_class, "DeviceNotFound")
        with self.assertRaises(ExecuteError) as e:
            await qmp.execute("query-status", {"bogus": 1})
        self.assertEqual(e.exception.error_class, "GenericError")

        # The seed, command by command, then the machine runs.
        await qmp.execute("x-machine-init")
        for line in SEED.read_text().splitlines()[1:-1]:
            cmd, *kv = line.split()
            args = {}
            for pair in kv:
                k, v = pair.split("=", 1)
                args[k] = int(v) if v.isdigit() else (True if v == "true" else v)
            await qmp.execute(cmd, args)
        listener = EventListener(("STOP", "RESUME"))
        with qmp.listen(listener):
            await qmp.execute("x-exit-preconfig")
            self.assertEqual((await asyncio.wait_for(listener.get(), 10))["event"], "RESUME")
            await qmp.execute("stop")
            self.assertEqual((await asyncio.wait_for(listener.get(), 10))["event"], "STOP")
            self.assertEqual((await qmp.execute("query-status"))["status"], "paused")
            await qmp.execute("cont")
            self.assertEqual((await asyncio.wait_for(listener.get(), 10))["event"], "RESUME")
        self.assertEqual((await qmp.execute("query-machine-phase"))["phase"], "ready")
        await qmp.disconnect()
        out = bb.serial_echo("qemu.qmp")
        self.assertTrue(out.startswith("echo32 ready\r\nqemu.qmp?irqs="), out)

    def test_seed_through_qmp_shell(self):
        shell = shutil.which("qmp-shell")
        if shell is None:
            self.skipTest("qmp-shell is not installed")
        bb = Breadboard()
        try:
            with open(SEED) as f:
                r = subprocess.run([shell, bb.qmp], stdin=f, capture_output=True,
                                   text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            replies = [l for l in r.stdout.splitlines() if l.startswith("(QEMU)")]
            self.assertGreaterEqual(len(replies), 13, r.stdout)
            self.assertNotIn('"error"', r.stdout, r.stdout)
            self.assertEqual(r.stdout.count('{"return": {}}'), 13, r.stdout)
            out = bb.serial_echo("qmp-shell")
            self.assertTrue(out.startswith("echo32 ready\r\nqmp-shell?irqs="), out)
            n = int(out.rsplit("irqs=", 1)[1])
            self.assertTrue(2 <= n <= 10, out)
        finally:
            bb.close()


if __name__ == "__main__":
    sys.exit(0 if unittest.main(exit=False, verbosity=2).result.wasSuccessful() else 1)
