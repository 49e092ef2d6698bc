//! Shared harness for the MMIO device targets: builds one device through its `DeviceType`
//! factory (as the machine does), maps its regions in an `AddressSpace` so accesses obey the
//! bus contract (sizes 1/2/4/8, any alignment, nothing past a region's end reaches the device),
//! wires its IRQ outputs to a recorder, and runs a fuzzed sequence of operations against it:
//! reads and writes at any offset (including just past the end), virtual time steps that fire
//! the device's timers, chardev input, GPIO input levels and resets.

#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use breadboard_core::chardev::MemoryBackend;
use breadboard_core::irq::RecordingSink;
use breadboard_core::{
    AddressSpace, Chardev, ChardevRegistry, Clock, ClockMode, DeviceCell, DeviceCtx, DeviceType,
    DriveRegistry, GuestMemory, Props, RawValue, Region, RegionKind, TimerHandle, TimerQueue,
};

pub const BASE: u64 = 0x1000_0000;
/// Regions are mapped this far apart; accesses may land in the gap after a region.
pub const STRIDE: u64 = 0x1000_0000;
const ID: usize = 3;

#[path = "input.rs"]
mod input;
pub use input::Input;

pub struct DevBench {
    pub space: AddressSpace,
    pub dev: DeviceCell,
    pub clock: Rc<Clock>,
    pub queue: Rc<TimerQueue>,
    pub irqs: Rc<RecordingSink>,
    pub sizes: Vec<u64>,
    pub chardev: Rc<Chardev>,
    fired: std::cell::Cell<u32>,
}

impl DevBench {
    /// Builds `ty` with `props`; `None` if the factory rejects them (a valid outcome).
    pub fn new(ty: &DeviceType, props: &[(&str, &str)], num_harts: u32) -> Option<DevBench> {
        let clock = Clock::new(ClockMode::Icount { shift: 0 });
        let queue = TimerQueue::new();
        let chardevs = ChardevRegistry::default();
        let chardev = Chardev::new("c0", Box::new(MemoryBackend::default()));
        chardevs.add(chardev.clone()).ok()?;
        let drives = DriveRegistry::default();
        let props = Props::build(
            &ty.name,
            &ty.props,
            props.iter().map(|&(k, v)| (k, RawValue::Str(v))),
        )
        .ok()?;
        let ctx = DeviceCtx {
            id: ID,
            name: "dut",
            clock: clock.clone(),
            timers: TimerHandle::new(queue.clone(), clock.clone(), ID),
            dma: Rc::new(GuestMemory::default()),
            chardevs: &chardevs,
            drives: &drives,
            num_harts,
        };
        let dev: DeviceCell = Rc::new(RefCell::new((ty.factory)(&props, &ctx).ok()?));
        let mut space = AddressSpace::new();
        let specs = dev.borrow().regions();
        let mut sizes = Vec::new();
        for (i, r) in specs.iter().enumerate() {
            let size = r.size();
            assert!(size > 0 && size <= STRIDE, "region larger than the harness stride");
            space
                .add(Region {
                    name: format!("r{i}"),
                    base: BASE + i as u64 * STRIDE,
                    size,
                    kind: RegionKind::Mmio {
                        device: dev.clone(),
                        index: i,
                    },
                    owner: None,
                })
                .expect("map");
            sizes.push(size);
        }
        let irqs = RecordingSink::new(4096);
        for (i, line) in dev.borrow().irq_outputs().iter().enumerate() {
            line.connect(irqs.clone(), i as u32);
        }
        dev.borrow_mut().reset();
        Some(DevBench {
            space,
            dev,
            clock,
            queue,
            irqs,
            sizes,
            chardev,
            fired: std::cell::Cell::new(0),
        })
    }

    /// Moves virtual time forward by `ns`, firing timers at their deadlines.
    pub fn advance(&self, ns: u64) {
        let target = self.clock.now().saturating_add(ns);
        // A timer that re-arms in the past fires forever in zero time: bound the work per
        // input (the machine's main loop bounds it by running harts in between).
        while let Some(deadline) = self.queue.next_deadline() {
            if deadline > target || self.fired.get() > 20_000 {
                break;
            }
            self.clock.warp_to(deadline.max(self.clock.now()));
            while self.fired.get() <= 20_000 {
                let Some((owner, token)) = self.queue.pop_expired(self.clock.now()) else {
                    break;
                };
                assert_eq!(owner, ID, "a timer of another owner");
                self.dev.borrow_mut().timer(token);
                self.fired.set(self.fired.get() + 1);
            }
        }
        self.clock.warp_to(target.max(self.clock.now()));
    }

    /// An address in (or just past) region `sel`, from fuzzed bits.
    pub fn addr(&self, sel: u8, off: u32) -> u64 {
        let n = self.sizes.len().max(1);
        let i = usize::from(sel) % n;
        let size = self.sizes.get(i).copied().unwrap_or(0x1000);
        // Mostly inside the region, sometimes up to 16 bytes past its end.
        let off = u64::from(off) % (size + 16);
        BASE + i as u64 * STRIDE + off
    }

    /// Runs operations until the input is used up (bounded).
    pub fn run(&self, inp: &mut Input<'_>) {
        for _ in 0..4096 {
            if inp.is_empty() {
                break;
            }
            let op = inp.u8();
            let size = 1u8 << (op >> 6);
            match op & 7 {
                0 | 1 => {
                    let a = self.addr(inp.u8(), inp.u32());
                    let _ = self.space.read(a, size);
                }
                2 | 3 => {
                    let a = self.addr(inp.u8(), inp.u32());
                    let v = inp.u64();
                    let _ = self.space.write(a, size, v);
                }
                4 => self.advance(u64::from(inp.u32())),
                5 => {
                    let n = usize::from(inp.u8() % 32);
                    let data = inp.bytes(n).to_vec();
                    let room = self.dev.borrow().can_receive();
                    let take = data.len().min(room);
                    if let Some(d) = data.get(..take) {
                        if !d.is_empty() {
                            self.dev.borrow_mut().receive(d);
                        }
                    }
                }
                6 => {
                    let line = inp.u16();
                    let level = line & 0x8000 != 0;
                    let n = self.dev.borrow().gpio_inputs();
                    if n > 0 {
                        self.dev.borrow_mut().set_gpio(u32::from(line & 0x7fff) % n, level);
                    }
                }
                _ => {
                    if inp.u8() == 0xa5 {
                        self.dev.borrow_mut().reset();
                    }
                }
            }
        }
    }
}
