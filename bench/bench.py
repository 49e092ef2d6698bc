#!/usr/bin/env python3
"""breadboard benchmarks, measured against QEMU (Debian qemu-system-misc) in the same run.

  bench/bench.py [--runs N] [--only NAME,...] [--no-write]

Benchmarks:
  boot      Linux boot to 'init reached' and OpenSBI-to-U-Boot-prompt time, median of runs.
  compose   virt + 10/100/1,000 dynamic devices + DTB; MMIO dispatch ns with 30 vs 1,020 regions.
  qmp       start-to-greeting and 1,000 query-status round trips vs qemu-system-riscv64 -M virt -S.
  workload  guest MIPS on bench/workload/workload.elf (CRC, sort, matrix, strings), bare metal
            on `-M virt -bios none -kernel`, same ELF on both; the guest instruction count comes
            from QEMU's minstret under `-icount shift=0` (exact), and both emulators must print
            the same checksum.
  vfio      MMIO read latency of a vfio-user region through an mmap'd fd and through messages,
            vs a built-in device (ns16550a LSR, also under QEMU), and the doorbell-to-IRQ round
            trip of the example checksum engine (bb-vfio-example); guest-timed with rdtime by
            firmware/vfio/mmio_bench.elf.
  timer     timer interrupt latency: firmware/icount/latency.elf arms mtimecmp and Sstc's
            stimecmp 1-3000 mtime ticks (100 ns) ahead and reports how late each interrupt came;
            median and worst over all runs, host time and -icount shift=0, QEMU and breadboard.
  snapshot  x-snapshot-save and x-snapshot-load time (QMP round trip) and file size for -M virt
            -m 256M -smp 2, stopped in the middle of firmware/snapshot under -icount shift=0.

Prints a table and, unless --no-write, replaces the matching section of BENCHMARKS.md.
Only the standard library is used.
"""
import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BB = os.path.join(ROOT, "target", "release", "breadboard")
QEMU = shutil.which("qemu-system-riscv64") or "qemu-system-riscv64"
WORKLOAD = os.path.join(ROOT, "bench", "workload", "workload.elf")


def run(argv, timeout=600):
    t0 = time.monotonic()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return time.monotonic() - t0, p.returncode, p.stdout.decode(errors="replace")


def field(out, name):
    m = re.search(name + r": (0x[0-9a-fA-F]+|\d+)", out)
    if not m:
        raise RuntimeError("no '%s' in output:\n%s" % (name, out[-2000:]))
    return m.group(1)


def bench_workload(runs):
    base = ["-M", "virt", "-bios", "none", "-nographic", "-kernel", WORKLOAD]
    # Exact instruction count, once: QEMU's minstret is an instruction count only with icount.
    _, rc, out = run([QEMU] + base + ["-icount", "shift=0"])
    if rc != 0:
        raise RuntimeError("qemu -icount run failed (%d):\n%s" % (rc, out))
    insns = int(field(out, "workload minstret"))
    want = field(out, "workload checksum")
    rows = {}
    for name, argv in (("qemu", [QEMU] + base), ("breadboard", [BB] + base),
                       ("breadboard-icount", [BB] + base + ["-icount", "shift=0"])):
        times = []
        for _ in range(runs):
            t, rc, out = run(argv)
            if rc != 0:
                raise RuntimeError("%s failed (%d):\n%s" % (name, rc, out[-2000:]))
            got = field(out, "workload checksum")
            if got != want:
                raise RuntimeError("%s checksum %s != expected %s" % (name, got, want))
            times.append(t)
        rows[name] = statistics.median(times)
    mips = {k: insns / v / 1e6 for k, v in rows.items()}
    return {
        "title": "Guest MIPS: compute workload (bench/workload, rv64, -bios none)",
        "header": ["emulator", "median wall s", "guest MIPS", "speed vs QEMU"],
        "rows": [
            ["QEMU %s TCG" % qemu_version(), "%.3f" % rows["qemu"], "%.0f" % mips["qemu"], "1.00x"],
            ["breadboard", "%.3f" % rows["breadboard"], "%.0f" % mips["breadboard"],
             "%.2fx" % (mips["breadboard"] / mips["qemu"])],
            ["breadboard -icount shift=0", "%.3f" % rows["breadboard-icount"],
             "%.0f" % mips["breadboard-icount"], "%.2fx" % (mips["breadboard-icount"] / mips["qemu"])],
        ],
        "notes": "%d guest instructions (QEMU minstret under -icount shift=0), median of %d runs, "
                 "same checksum %s on both." % (insns, runs, want),
    }


def qemu_version():
    try:
        out = subprocess.run([QEMU, "--version"], stdout=subprocess.PIPE).stdout.decode()
        return re.search(r"version (\S+)", out).group(1)
    except Exception:
        return "?"


GUESTS = os.environ.get("BREADBOARD_GUESTS", os.path.join(os.path.dirname(ROOT), "shared", "guests"))


def time_to(argv, patterns, timeout=300):
    """Seconds from start until each pattern appears on stdout; kills the process after."""
    import select
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    os.set_blocking(p.stdout.fileno(), False)
    buf, got = b"", []
    try:
        for pat in patterns:
            while pat not in buf:
                if time.monotonic() - t0 > timeout:
                    raise RuntimeError("timeout waiting for %r in:\n%s" % (pat, buf[-3000:].decode(errors="replace")))
                r, _, _ = select.select([p.stdout], [], [], 0.2)
                if r:
                    chunk = p.stdout.read()
                    if not chunk:
                        raise RuntimeError("exited before %r:\n%s" % (pat, buf[-3000:].decode(errors="replace")))
                    buf += chunk
            got.append(time.monotonic() - t0)
    finally:
        p.kill()
        p.wait()
    return got


def bench_boot(runs):
    g = lambda f: os.path.join(GUESTS, f)
    linux = ["-M", "virt", "-smp", "2", "-m", "256M", "-nographic", "-bios", g("fw_jump.elf"),
             "-kernel", g("Image"), "-initrd", g("initramfs.cpio.gz"), "-append", "console=ttyS0 earlycon"]
    uboot = ["-M", "virt", "-smp", "2", "-m", "256M", "-nographic", "-bios", g("fw_jump.elf"),
             "-kernel", g("u-boot-qemu-riscv64_smode.bin")]
    rows = []
    res = {}
    for name, exe in (("qemu", QEMU), ("breadboard", BB)):
        li = [time_to([exe] + linux, [b"breadboard-guest: init reached"])[0] for _ in range(runs)]
        # U-Boot: from start to the OpenSBI banner, and to U-Boot's prompt (after its 2 s
        # autoboot countdown and the failed boot scan, the same work on both).
        ub = [time_to([exe] + uboot, [b"OpenSBI v", b"=> "]) for _ in range(runs)]
        res[name] = (statistics.median(li), statistics.median(u[1] - u[0] for u in ub))
    for label, i in (("Linux 6.1 boot to 'init reached' (OpenSBI fw_jump, -smp 2)", 0),
                     ("OpenSBI banner to U-Boot '=> ' prompt", 1)):
        q, b = res["qemu"][i], res["breadboard"][i]
        rows.append([label, "%.2f" % q, "%.2f" % b, "%.2fx" % (b / q)])
    return {
        "title": "Boot times (../shared/guests, same files and command line on both)",
        "header": ["what", "QEMU %s s" % qemu_version(), "breadboard s", "breadboard time / QEMU time"],
        "rows": rows,
        "notes": "Median of %d runs each; wall-clock seconds from process start. Lower is better; "
                 "the last column is how many times longer breadboard takes." % runs,
    }


def bench_compose(runs):
    out = subprocess.run(["cargo", "run", "--release", "-q", "-p", "breadboard-platform", "--example", "compose"],
                         cwd=ROOT, stdout=subprocess.PIPE, check=True).stdout.decode()
    comp = re.findall(r"compose N=(\d+) ms=([\d.]+)", out)
    disp = re.findall(r"dispatch regions=(\d+) ns=([\d.]+)", out)
    rows = [["compose virt + %s dynamic devices + write DTB" % n, "%s ms" % ms] for n, ms in comp]
    rows += [["MMIO dispatch, %s regions mapped" % n, "%s ns/access" % ns] for n, ns in disp]
    return {
        "title": "Platform bus: composition and MMIO dispatch (crates/platform/examples/compose.rs)",
        "header": ["what", "best of 5 (compose) / 3 (dispatch)"],
        "rows": rows,
        "notes": "No QEMU column: QEMU's riscv virt has no platform bus to add 1,000 devices to. "
                 "Dispatch is a binary search over sorted regions (O(log n)).",
    }


def qmp_session(argv, sock, n):
    """Start argv, time until the QMP greeting, then n query-status round trips."""
    import socket as so
    if os.path.exists(sock):
        os.unlink(sock)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        s = so.socket(so.AF_UNIX)
        while True:
            try:
                s.connect(sock)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() - t0 > 30:
                    raise RuntimeError("no QMP socket from %s" % argv[0])
                time.sleep(0.0005)
        # Buffered reads (an unbuffered readline costs one recv per byte, which would swamp
        # what is being measured); unbuffered writes so each command goes out at once.
        r = s.makefile("rb")
        w = s.makefile("wb", buffering=0)
        r.readline()
        greet = time.monotonic() - t0
        w.write(b'{"execute": "qmp_capabilities"}\n')
        r.readline()
        t1 = time.monotonic()
        for _ in range(n):
            w.write(b'{"execute": "query-status"}\n')
            line = r.readline()
            while b'"return"' not in line:
                line = r.readline()
        rt = (time.monotonic() - t1) / n
        return greet, rt
    finally:
        p.kill()
        p.wait()


def bench_qmp(runs):
    res = {}
    for name, exe in (("qemu", QEMU), ("breadboard", BB)):
        sock = "/tmp/bb-bench-%s-%d.sock" % (name, os.getpid())
        argv = [exe, "-M", "virt", "-S", "-display", "none", "-qmp", "unix:%s,server=on,wait=off" % sock]
        if name == "breadboard":
            argv += ["-bios", "none"]
        else:
            argv += ["-bios", "none"]
        r = [qmp_session(argv, sock, 1000) for _ in range(runs)]
        res[name] = (statistics.median(x[0] for x in r), statistics.median(x[1] for x in r))
    q, b = res["qemu"], res["breadboard"]
    return {
        "title": "QMP: process start to greeting, and query-status round trip (-M virt -S)",
        "header": ["what", "QEMU %s" % qemu_version(), "breadboard", "breadboard / QEMU"],
        "rows": [
            ["start to QMP greeting", "%.1f ms" % (q[0] * 1e3), "%.1f ms" % (b[0] * 1e3), "%.2fx" % (b[0] / q[0])],
            ["query-status round trip (1,000 in a row)", "%.1f us" % (q[1] * 1e6), "%.1f us" % (b[1] * 1e6),
             "%.2fx" % (b[1] / q[1])],
        ],
        "notes": "Median of %d runs; unix socket; lower is better." % runs,
    }


def qmp_open(argv, sock):
    """Start argv with a QMP socket; returns (process, file) after capabilities negotiation."""
    import socket as so
    if os.path.exists(sock):
        os.unlink(sock)
    p = subprocess.Popen(argv + ["-qmp", "unix:%s,server=on,wait=off" % sock], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    s = so.socket(so.AF_UNIX)
    while True:
        try:
            s.connect(sock)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() - t0 > 30:
                p.kill()
                raise RuntimeError("no QMP socket from %s" % argv[0])
            time.sleep(0.001)
    f = s.makefile("rwb", buffering=0)
    f.readline()
    qmp_cmd(f, '{"execute": "qmp_capabilities"}')
    return p, f


def qmp_cmd(f, cmd):
    """Send one command; returns (seconds to the reply, reply line)."""
    t0 = time.monotonic()
    f.write(cmd.encode() + b"\n")
    line = f.readline()
    while b'"return"' not in line and b'"error"' not in line:
        if not line:
            raise RuntimeError("QMP connection closed during %s" % cmd)
        line = f.readline()
    if b'"error"' in line:
        raise RuntimeError("%s failed: %s" % (cmd, line.decode(errors="replace")))
    return time.monotonic() - t0, line


def bench_snapshot(runs):
    fw = os.path.join(ROOT, "firmware", "snapshot", "snapshot.elf")
    base = [BB, "-M", "virt", "-m", "256M", "-smp", "2", "-bios", "none", "-nographic", "-kernel", fw,
            "-icount", "shift=0"]
    path = "/tmp/bb-bench-snapshot-%d.bbsnap" % os.getpid()
    sock = "/tmp/bb-bench-snapshot-%d.sock" % os.getpid()
    saves, loads, size = [], [], 0
    try:
        for _ in range(runs):
            p, f = qmp_open(base, sock)
            try:
                time.sleep(0.5)  # let the guest run a while
                qmp_cmd(f, '{"execute": "stop"}')
                saves.append(qmp_cmd(f, '{"execute": "x-snapshot-save", "arguments": {"filename": "%s"}}'
                                     % path)[0])
            finally:
                p.kill()
                p.wait()
            size = os.path.getsize(path)
            p, f = qmp_open(base + ["-S"], sock)
            try:
                loads.append(qmp_cmd(f, '{"execute": "x-snapshot-load", "arguments": {"filename": "%s"}}'
                                     % path)[0])
            finally:
                p.kill()
                p.wait()
    finally:
        for x in (path, sock):
            if os.path.exists(x):
                os.unlink(x)
    return {
        "title": "Snapshots: x-snapshot-save / x-snapshot-load with 256 MiB RAM (-M virt -smp 2)",
        "header": ["what", "median", "file size"],
        "rows": [
            ["x-snapshot-save (stopped guest)", "%.0f ms" % (statistics.median(saves) * 1e3),
             "%.1f MiB" % (size / 2**20)],
            ["x-snapshot-load (new process, -S)", "%.0f ms" % (statistics.median(loads) * 1e3),
             "%.1f MiB" % (size / 2**20)],
        ],
        "notes": "Median of %d runs; QMP command round trip, the file in /tmp (page cache), RAM stored "
                 "uncompressed. No QEMU column: QEMU's savevm needs a qcow2 disk in the machine." % runs,
    }


def mmio_bench(argv):
    """Run firmware/vfio/mmio_bench.elf; return {name: ns per operation} (10 MHz time CSR)."""
    _, code, out = run(argv, timeout=300)
    if code != 0:
        raise RuntimeError("mmio_bench exited %s:\n%s" % (code, out[-2000:]))
    res = {}
    for name, ticks, count in re.findall(r"^(\w+) ([0-9a-f]{16}) ([0-9a-f]{16})", out, re.M):
        res[name] = int(ticks, 16) * 100.0 / int(count, 16)
    return res


def bench_vfio(runs):
    elf = os.path.join(ROOT, "firmware", "vfio", "mmio_bench.elf")
    server = os.path.join(ROOT, "target", "release", "bb-vfio-example")
    if not os.path.exists(server):
        subprocess.run(["cargo", "build", "--release", "-p", "breadboard-vfio-user-example"],
                       cwd=ROOT, check=True)
    base = ["-M", "virt", "-bios", "none", "-kernel", elf, "-nographic"]
    samples = {}
    for _ in range(runs):
        q = mmio_bench([QEMU] + base)
        samples.setdefault("qemu uart", []).append(q["uart"])
        sock = "/tmp/bb-bench-vfio-%d.sock" % os.getpid()
        if os.path.exists(sock):
            os.unlink(sock)
        srv = subprocess.Popen([server, "--socket", sock, "--device", "checksum"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if os.path.exists(sock):
                    break
                time.sleep(0.05)
            b = mmio_bench([BB] + base + ["-device", "vfio-platform,socket=" + sock])
        finally:
            srv.kill()
            srv.wait()
        for k, v in b.items():
            samples.setdefault(k, []).append(v)
    med = {k: statistics.median(v) for k, v in samples.items()}
    q = med["qemu uart"]
    rows = [
        ["built-in ns16550a LSR read (QEMU 7.2)", "%.0f ns" % q, "1.00x"],
        ["built-in ns16550a LSR read (breadboard)", "%.0f ns" % med["uart"], "%.2fx" % (med["uart"] / q)],
        ["vfio-user region through an mmap'd fd (SRAM)", "%.0f ns" % med["mmap"], "%.2fx" % (med["mmap"] / q)],
        ["vfio-user region through messages (ID register)", "%.0f ns" % med["msg"], "%.2fx" % (med["msg"] / q)],
        ["doorbell write -> eventfd -> guest sees MEIP -> claim, clear, complete (unmask)",
         "%.0f ns" % med["irq"], "%.2fx" % (med["irq"] / q)],
    ]
    return {
        "title": "vfio-user platform device: MMIO and IRQ latency (firmware/vfio/mmio_bench.S)",
        "header": ["what (guest-timed, per operation)", "median", "vs QEMU built-in MMIO read"],
        "rows": rows,
        "notes": "Median of %d runs; the guest times loops with the time CSR (100 ns resolution, "
                 "200,000 reads for built-in and mmap rows, 20,000 messages, 2,000 IRQ round trips). "
                 "Server: `bb-vfio-example --device checksum` on a unix socket. QEMU 7.2 has no "
                 "vfio-user platform device (and no vfio-platform since 10.2), so its column is the "
                 "built-in UART read only." % runs,
    }


LATENCY = os.path.join(ROOT, "firmware", "icount", "latency.elf")


def bench_timer(runs):
    base = ["-M", "virt", "-bios", "none", "-nographic", "-kernel", LATENCY]
    rows = []
    for label, argv in (("QEMU %s TCG" % qemu_version(), [QEMU] + base),
                        ("breadboard", [BB] + base),
                        ("QEMU %s TCG -icount shift=0" % qemu_version(), [QEMU] + base + ["-icount", "shift=0"]),
                        ("breadboard -icount shift=0", [BB] + base + ["-icount", "shift=0"])):
        lates = []
        for _ in range(runs):
            _, rc, out = run(argv, timeout=120)
            if rc != 0 or "EARLY" in out:
                raise RuntimeError("%s failed (%d):\n%s" % (label, rc, out[-2000:]))
            got = [int(v) for v in re.findall(r" late (\d+)", out)]
            if len(got) != 24:
                raise RuntimeError("%s: %d results:\n%s" % (label, len(got), out[-2000:]))
            lates += got
        lates.sort()
        # mtime ticks are 100 ns.
        rows.append([label, "%.1f us" % (statistics.median(lates) / 10),
                     "%.1f us" % (lates[int(len(lates) * 0.9)] / 10), "%.1f us" % (lates[-1] / 10)])
    return {
        "title": "Timer interrupt latency (firmware/icount/latency.elf)",
        "header": ["emulator", "median late", "90th percentile", "worst"],
        "rows": rows,
        "notes": "24 deadlines per run (mtimecmp and stimecmp, 1 to 3000 ticks ahead), %d runs each; "
                 "lateness is guest mtime at the interrupt minus the deadline (100 ns ticks). "
                 "Under -icount time is the instruction count, so 0 is exact. In host time "
                 "breadboard ends each slice at the next deadline by the harts' measured pace; "
                 "QEMU kicks its vCPU from a host timer." % runs,
    }


BENCHES = {"workload": bench_workload, "boot": bench_boot, "compose": bench_compose, "qmp": bench_qmp,
           "snapshot": bench_snapshot, "vfio": bench_vfio, "timer": bench_timer}


def table(res):
    lines = ["### " + res["title"], "", "| " + " | ".join(res["header"]) + " |",
             "|" + "---|" * len(res["header"])]
    for r in res["rows"]:
        lines.append("| " + " | ".join(r) + " |")
    lines += ["", res["notes"], ""]
    return "\n".join(lines)


def write_section(name, text):
    path = os.path.join(ROOT, "BENCHMARKS.md")
    doc = open(path).read() if os.path.exists(path) else "# Benchmarks\n\n"
    begin, end = "<!-- bench:%s -->" % name, "<!-- /bench:%s -->" % name
    block = "%s\n%s\n%s" % (begin, text, end)
    if begin in doc:
        doc = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, doc, flags=re.S)
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    open(path, "w").write(doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default=",".join(BENCHES))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(BB):
        subprocess.run(["cargo", "build", "--release", "-p", "breadboard"], cwd=ROOT, check=True)
    machine = "%s, %d cores, %s, load average %.1f at start" % (
        platform.machine(), os.cpu_count(), time.strftime("%Y-%m-%d"), os.getloadavg()[0])
    for name in args.only.split(","):
        res = BENCHES[name](args.runs)
        text = table(res) + "Machine: %s. Command: `bench/bench.py --only %s --runs %d`.\n" % (
            machine, name, args.runs)
        print(text)
        if not args.no_write:
            write_section(name, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
