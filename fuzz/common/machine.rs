//! Shared harness of the whole-machine targets (`machine_mmio`, `snapshot_load`): the `virt`
//! board with every built-in device type mapped (a second ns16550a, goldfish-rtc, ibex-uart,
//! ibex-plic, CLINT, PLIC, sifive_test, sysbus-memory on the platform bus; virtio-blk on a small
//! temp image, virtio-rng and virtio-console on the virtio-mmio transports), and the operation
//! interpreter [`run`] that drives it:
//!
//! - MMIO reads and writes of 1/2/4/8 bytes at a mapped region's base plus any 16-bit offset
//!   (unaligned, past the device's end, into the gap after it) or at any 64-bit address,
//!   through the system bus a hart uses (`Machine::with_hart_bus`), so machine requests
//!   (shutdown, reset) are seen as the main loop sees them;
//! - DMA patterns: bytes written into guest RAM, and split-virtqueue descriptors (address,
//!   length, flags, next) with rings, so the devices' queue code meets malformed chains;
//! - a Linux-like virtio queue bring-up on one transport (to reach the queue code quickly);
//! - clock steps: advance virtual time (`-icount`) by any amount or to the next timer deadline
//!   and fire the expired timers;
//! - a machine reset in the middle.

#![allow(dead_code)]

use std::rc::Rc;

use breadboard_core::{BlockBackend, ChardevRegistry, DriveRegistry, MachineRequest, TypeRegistry};
use breadboard_platform::{BootOptions, DeviceOption, Firmware, Machine, MachineOptions};
use breadboard_riscv::Bus;

pub const RAM_BASE: u64 = 0x8000_0000;
pub const RAM_SIZE: u64 = 1 << 20;
/// The virtio-mmio transports of `virt` (virtio0..virtio7).
pub const VIRTIO_BASE: u64 = 0x1000_1000;

#[path = "input.rs"]
mod input;
pub use input::Input;

/// The machine under test.
pub struct Fuzz {
    pub m: Machine,
    /// (base, size) of every mapped region, RAM and ROM included.
    pub regions: Vec<(u64, u64)>,
}

/// The machine, with every device added, finished (not reset yet).
pub fn build() -> Fuzz {
    let image = std::env::temp_dir().join(format!("bb-fuzz-machine-{}.img", std::process::id()));
    // The same image contents for every input.
    std::fs::write(&image, vec![0xa5u8; 64 * 1024]).expect("temp image");
    let drives = Rc::new(DriveRegistry::default());
    drives
        .add(BlockBackend::open("hd0", &image, false).expect("open image"))
        .expect("add drive");
    let mut reg = TypeRegistry::new();
    breadboard_devices::register_builtin(&mut reg);
    let opts = MachineOptions {
        machine: "virt".into(),
        cpu: None,
        smp: Some(2),
        ram_size: Some(RAM_SIZE),
        icount_shift: Some(0),
    };
    let mut m = Machine::create(&opts, reg, Rc::new(ChardevRegistry::default()), drives)
        .expect("virt machine");
    let devices: &[(&str, &str, &[(&str, &str)])] = &[
        ("virtio-blk-device", "vblk", &[("drive", "hd0")]),
        ("virtio-rng-device", "vrng", &[]),
        ("virtio-console-device", "vcon", &[]),
        ("ns16550a", "uart1", &[]),
        ("goldfish-rtc", "rtc1", &[]),
        ("ibex-uart", "ibexuart", &[]),
        ("clint", "clint1", &[]),
        ("plic", "plic1", &[]),
        ("sifive_test", "test1", &[]),
        ("sysbus-memory", "mem1", &[("size", "0x1000")]),
    ];
    for (driver, id, props) in devices {
        let opt = DeviceOption {
            driver: (*driver).into(),
            id: Some((*id).into()),
            props: props
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        };
        if let Err(e) = m.add_user_device(&opt) {
            // Not fatal (the board may have no room for a type), but say so once.
            eprintln!("fuzz machine: -device {driver}: {e}");
        }
    }
    // The ibex PLIC's window (64 MiB) does not fit the 32 MiB platform bus: map it by hand
    // where `virt` has nothing (QEMU's flash banks).
    let ibex = DeviceOption {
        driver: "ibex-plic".into(),
        id: Some("ibexplic".into()),
        props: Vec::new(),
    };
    match m.add_user_device(&ibex) {
        Ok(id) => {
            if let Err(e) = m.map_region(id, 0, 0x2000_0000) {
                eprintln!("fuzz machine: mapping ibex-plic: {e}");
                m.remove_device(id);
            }
        }
        Err(e) => eprintln!("fuzz machine: -device ibex-plic: {e}"),
    }
    if let Err(e) = m.wire_default_cpu_irqs() {
        eprintln!("fuzz machine: wiring CPU IRQs: {e}");
    }
    let boot = BootOptions {
        firmware: Firmware::None,
        kernel: None,
        initrd: None,
        append: None,
        dtb: None,
    };
    m.finish(&boot).expect("finish the machine");
    let regions = m.space.regions().iter().map(|r| (r.base, r.size)).collect();
    Fuzz { m, regions }
}

/// One access through the hart's system bus; returns whether the machine asked to stop
/// (shutdown) so the input ends there.
pub fn access(f: &mut Fuzz, write: bool, addr: u64, size: u8, value: u64) -> bool {
    let req = f.m.with_hart_bus(0, |_, bus| {
        if write {
            let _ = bus.write(addr, size, value);
        } else {
            let _ = bus.read(addr, size);
        }
        bus.request.take()
    });
    match req.flatten() {
        Some(MachineRequest::Shutdown { .. }) => true,
        Some(MachineRequest::Reset) => {
            let _ = f.m.system_reset();
            false
        }
        None => false,
    }
}

pub fn addr(f: &Fuzz, inp: &mut Input<'_>) -> u64 {
    let sel = inp.u8();
    if sel == 0xff || f.regions.is_empty() {
        return inp.u64();
    }
    let (base, _) = f.regions[usize::from(sel) % f.regions.len()];
    base.wrapping_add(u64::from(inp.u16()))
}

/// The Linux-like bring-up of queue `q` of transport `t` with `num` entries, rings at fixed
/// RAM offsets (descriptors at RAM_BASE, avail +0x1000, used +0x2000).
pub fn virtio_init(f: &mut Fuzz, t: u64, q: u32, num: u32, features_lo: u32) -> bool {
    let base = VIRTIO_BASE + t * 0x1000;
    let regs: [(u64, u32); 17] = [
        (0x070, 0),
        (0x070, 1),
        (0x070, 3),
        (0x024, 1),
        (0x020, 1),
        (0x024, 0),
        (0x020, features_lo),
        (0x070, 0xb),
        (0x030, q),
        (0x038, num),
        (0x080, RAM_BASE as u32),
        (0x084, 0),
        (0x090, (RAM_BASE + 0x1000) as u32),
        (0x094, 0),
        (0x0a0, (RAM_BASE + 0x2000) as u32),
        (0x0a4, 0),
        (0x044, 1),
    ];
    for (off, v) in regs {
        if access(f, true, base + off, 4, u64::from(v)) {
            return true;
        }
    }
    access(f, true, base + 0x070, 4, 0xf)
}

/// Runs operations from `inp` until it is empty, the machine asks to shut down, or 4096
/// operations have run.
pub fn run(f: &mut Fuzz, inp: &mut Input<'_>) {
    for _ in 0..4096 {
        if inp.0.is_empty() {
            return;
        }
        let op = inp.u8();
        let size = 1u8 << (op >> 6);
        let stop = match op & 0xf {
            0..=3 => {
                let a = addr(f, inp);
                access(f, false, a, size, 0)
            }
            4..=7 => {
                let a = addr(f, inp);
                let v = inp.u64();
                access(f, true, a, size, v)
            }
            8 => {
                // Raw bytes into guest RAM (rings, buffers, request headers).
                let off = u64::from(inp.u16()) << 4;
                let n = usize::from(inp.u8());
                let data = inp.bytes(n).to_vec();
                let _ = f.m.dma.write(RAM_BASE + (off % RAM_SIZE), &data);
                false
            }
            9 => {
                // One split-virtqueue descriptor in the table at RAM_BASE: any address
                // (RAM, MMIO, nothing, overflowing), length, flags and next.
                let idx = u64::from(inp.u8());
                let mut d = [0u8; 16];
                let a = match inp.u8() % 4 {
                    0 => RAM_BASE + u64::from(inp.u32()) % RAM_SIZE,
                    1 => f
                        .regions
                        .get(usize::from(inp.u8()) % f.regions.len().max(1))
                        .map_or(0, |r| r.0),
                    2 => u64::MAX - u64::from(inp.u16()),
                    _ => inp.u64(),
                };
                d[..8].copy_from_slice(&a.to_le_bytes());
                d[8..12].copy_from_slice(&inp.u32().to_le_bytes());
                d[12..14].copy_from_slice(&(u16::from(inp.u8() & 7)).to_le_bytes());
                d[14..16].copy_from_slice(&inp.u16().to_le_bytes());
                let _ = f.m.dma.write(RAM_BASE + idx * 16, &d);
                false
            }
            10 => {
                // The avail ring: flags, idx and one entry.
                let idx = inp.u16();
                let slot = u64::from(inp.u8());
                let head = inp.u16();
                let _ = f.m.dma.write_u16(RAM_BASE + 0x1002, idx);
                let _ = f.m.dma.write_u16(RAM_BASE + 0x1004 + 2 * slot, head);
                false
            }
            11 => {
                let t = u64::from(inp.u8() % 8);
                let q = u32::from(inp.u8() % 3);
                let num = u32::from(inp.u16());
                let feat = inp.u32();
                virtio_init(f, t, q, num, feat)
            }
            12 => {
                // Notify queue q of transport t.
                let t = u64::from(inp.u8() % 8);
                let q = u64::from(inp.u8() % 3);
                access(f, true, VIRTIO_BASE + t * 0x1000 + 0x050, 4, q)
            }
            13 => {
                // Advance virtual time by up to ~4 s, fire timers.
                let d = u64::from(inp.u32());
                let now = f.m.clock.now();
                f.m.clock.warp_to(now.saturating_add(d));
                f.m.fire_timers();
                f.m.pump_chardevs();
                false
            }
            14 => {
                // To the next deadline, or far (extreme timer values).
                match f.m.timers.next_deadline() {
                    Some(d) if op & 0x80 == 0 => f.m.clock.warp_to(d),
                    _ => {
                        let now = f.m.clock.now();
                        f.m.clock
                            .warp_to(now.saturating_add(u64::from(inp.u32()) << 20));
                    }
                }
                f.m.fire_timers();
                false
            }
            _ => {
                let _ = f.m.system_reset();
                false
            }
        };
        if stop {
            return;
        }
    }
}
