#!/usr/bin/env python3
"""breadboard benchmarks, measured against QEMU (Debian qemu-system-misc) in the same run.

  bench/bench.py [--runs N] [--only NAME,...] [--no-write]

Benchmarks:
  workload  guest MIPS on bench/workload/workload.elf (CRC, sort, matrix, strings), bare metal
            on `-M virt -bios none -kernel`, same ELF on both; the guest instruction count comes
            from QEMU's minstret under `-icount shift=0` (exact), and both emulators must print
            the same checksum.

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
    for name, argv in (("qemu", [QEMU] + base), ("breadboard", [BB] + base)):
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


BENCHES = {"workload": bench_workload}


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
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default=",".join(BENCHES))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(BB):
        subprocess.run(["cargo", "build", "--release", "-p", "breadboard"], cwd=ROOT, check=True)
    machine = "%s, %d cores, %s" % (platform.machine(), os.cpu_count(), time.strftime("%Y-%m-%d"))
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
