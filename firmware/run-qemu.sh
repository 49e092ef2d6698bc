#!/bin/sh
# Runs every ISA test program and the demo firmware on QEMU and reports the
# exit code of each (0 = pass).  Usage: firmware/run-qemu.sh  (from anywhere)
cd "$(dirname "$0")" || exit 2
QEMU64=${QEMU64:-qemu-system-riscv64}
QEMU32=${QEMU32:-qemu-system-riscv32}
failed=0
while read -r name xlen; do
    case "$name" in ''|'#'*) continue ;; esac
    if [ "$xlen" = rv32 ]; then q=$QEMU32; else q=$QEMU64; fi
    out=$(timeout 20 "$q" -M virt -bios none -nographic -monitor none -serial stdio \
          -kernel "tests/$name.elf" </dev/null 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then echo "PASS $name"; else echo "FAIL $name (exit $rc) $out"; failed=1; fi
done < tests/programs.txt
out=$(timeout 20 "$QEMU64" -M virt -bios none -nographic -monitor none -serial stdio \
      -kernel demo/demo.elf </dev/null 2>&1)
rc=$?
if [ $rc -eq 0 ]; then echo "PASS demo"; else echo "FAIL demo (exit $rc)"; echo "$out"; failed=1; fi
exit $failed
