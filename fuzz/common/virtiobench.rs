//! Shared harness for the virtio targets: a small guest RAM and a virtio-mmio transport mapped
//! in a real `AddressSpace` (so a descriptor may point at the transport's own MMIO), a backend
//! made through its `DeviceType` factory and plugged, then a fuzzed sequence of transport
//! register accesses, guest RAM writes (descriptor tables, rings, buffers) and a "driver init"
//! shortcut that sets a queue up the way Linux does so notifications reach the queue code fast.

#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use breadboard_core::irq::RecordingSink;
use breadboard_core::{
    AddressSpace, ChardevRegistry, Clock, ClockMode, DeviceCell, DeviceCtx, DeviceType,
    DriveRegistry, GuestMemory, Props, RamBlock, RawValue, Region, RegionKind, TimerHandle,
    TimerQueue,
};
use breadboard_devices::virtio::{self, mmio, status};

pub const RAM_BASE: u64 = 0x8000_0000;
pub const RAM_SIZE: u64 = 0x1_0000;
pub const MMIO_BASE: u64 = 0x1000_1000;

#[path = "input.rs"]
mod input;
pub use input::Input;

pub struct VirtioBench {
    pub space: AddressSpace,
    pub mem: Rc<GuestMemory>,
    pub transport: DeviceCell,
    pub clock: Rc<Clock>,
    pub queue: Rc<TimerQueue>,
    pub irqs: Rc<RecordingSink>,
}

impl VirtioBench {
    pub fn new(ty: &DeviceType, props: &[(&str, &str)], drives: &DriveRegistry) -> VirtioBench {
        let mut space = AddressSpace::new();
        space
            .add(Region {
                name: "ram".into(),
                base: RAM_BASE,
                size: RAM_SIZE,
                kind: RegionKind::Ram {
                    block: Rc::new(RamBlock::new("ram", RAM_SIZE).expect("alloc")),
                    readonly: false,
                },
                owner: None,
            })
            .expect("map ram");
        let mem = Rc::new(GuestMemory::default());
        let clock = Clock::new(ClockMode::Icount { shift: 0 });
        let queue = TimerQueue::new();
        let chardevs = ChardevRegistry::default();
        let make = |id: usize, ty: &DeviceType, props: &[(&str, &str)]| -> DeviceCell {
            let p = Props::build(
                &ty.name,
                &ty.props,
                props.iter().map(|&(k, v)| (k, RawValue::Str(v))),
            )
            .expect("props");
            let ctx = DeviceCtx {
                id,
                name: &ty.name,
                clock: clock.clone(),
                timers: TimerHandle::new(queue.clone(), clock.clone(), id),
                dma: mem.clone(),
                chardevs: &chardevs,
                drives,
                num_harts: 1,
            };
            Rc::new(RefCell::new((ty.factory)(&p, &ctx).expect("device")))
        };
        let backend = make(1, ty, props);
        let transport = make(2, &mmio::device_type(), &[]);
        space
            .add(Region {
                name: "virtio-mmio".into(),
                base: MMIO_BASE,
                size: mmio::REGION_SIZE,
                kind: RegionKind::Mmio {
                    device: transport.clone(),
                    index: 0,
                },
                owner: None,
            })
            .expect("map transport");
        mem.update_from(&space);
        let irqs = RecordingSink::new(4);
        for (i, line) in transport.borrow().irq_outputs().iter().enumerate() {
            line.connect(irqs.clone(), i as u32);
        }
        transport.borrow_mut().reset();
        virtio::plug(&transport, backend).expect("plug");
        VirtioBench {
            space,
            mem,
            transport,
            clock,
            queue,
            irqs,
        }
    }

    fn w(&self, off: u64, v: u32) {
        let _ = self.space.write(MMIO_BASE + off, 4, u64::from(v));
    }

    /// Linux-like bring-up of queue `q` with `num` entries at fixed RAM offsets.
    fn init(&self, q: u32, num: u32, features_hi: u32, features_lo: u32) {
        self.w(0x070, 0);
        self.w(0x070, status::ACKNOWLEDGE);
        self.w(0x070, status::ACKNOWLEDGE | status::DRIVER);
        self.w(0x024, 1);
        self.w(0x020, features_hi | 1);
        self.w(0x024, 0);
        self.w(0x020, features_lo);
        self.w(0x070, status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
        self.w(0x030, q);
        self.w(0x038, num);
        let desc = RAM_BASE;
        let avail = RAM_BASE + 0x1000;
        let used = RAM_BASE + 0x2000;
        self.w(0x080, desc as u32);
        self.w(0x084, (desc >> 32) as u32);
        self.w(0x090, avail as u32);
        self.w(0x094, (avail >> 32) as u32);
        self.w(0x0a0, used as u32);
        self.w(0x0a4, (used >> 32) as u32);
        self.w(0x044, 1);
        self.w(
            0x070,
            status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK,
        );
    }

    pub fn run(&self, inp: &mut Input<'_>) {
        for _ in 0..1024 {
            if inp.is_empty() {
                break;
            }
            let op = inp.u8();
            let size = 1u8 << (op >> 6);
            match op & 7 {
                0 => {
                    let off = u64::from(inp.u16()) % (mmio::REGION_SIZE + 8);
                    let _ = self.space.read(MMIO_BASE + off, size);
                }
                1 => {
                    let off = u64::from(inp.u16()) % (mmio::REGION_SIZE + 8);
                    let v = inp.u32();
                    let _ = self.space.write(MMIO_BASE + off, size, u64::from(v));
                }
                2 | 3 => {
                    // Guest RAM: descriptors, rings and buffers.
                    let off = u64::from(inp.u16()) % RAM_SIZE;
                    let n = usize::from(inp.u8() % 64);
                    let data = inp.bytes(n).to_vec();
                    let _ = self.mem.write(RAM_BASE + off, &data);
                }
                4 => {
                    let q = u32::from(inp.u8() % 3);
                    let num = u32::from(inp.u16());
                    let hi = u32::from(inp.u8());
                    let lo = inp.u32();
                    self.init(q, num, hi, lo);
                }
                5 => self.w(0x050, u32::from(inp.u8() % 4)),
                6 => {
                    let v = inp.u32();
                    self.w(0x064, v);
                }
                _ => {
                    let _ = self.space.read(MMIO_BASE + 0x060, 4);
                    let _ = self.space.read(MMIO_BASE + 0x070, 4);
                }
            }
        }
    }
}
