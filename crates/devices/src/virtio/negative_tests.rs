//! The guest as an adversary: a table of malformed queue setups and descriptor chains, run
//! against every virtio device type. Each case must leave the faulty device with
//! DEVICE_NEEDS_RESET set, a configuration-change interrupt raised and its error counter at 1,
//! must not panic, must not complete anything, and must not disturb a healthy device of the
//! same type on another transport of the same machine. After a reset the faulty device works
//! again.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use breadboard_core::{AccessError, DeviceType};

use super::queue::{VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT};
use super::testutil::{Bench, Buf, Driver, QSIZE, RAM_BASE, RAM_SIZE};
use super::{INT_CONFIG, QueueError, blk, console, feature, rng, status};

/// Guest physical address with nothing mapped.
const UNMAPPED: u64 = 0x4000_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bad {
    // Queue setup, refused at QueueReady.
    SizeZero,
    SizeNotPowerOfTwo,
    SizeAboveMax,
    DescTableOutsideRam,
    DescTableInMmio,
    UsedRingPastEndOfRam,
    MisalignedDescTable,
    // Chains.
    Loop,
    NextOutOfRange,
    HeadOutOfRange,
    AddrLenOverflow,
    BufferOutsideRam,
    BufferPastEndOfRam,
    BufferInMmio,
    ZeroLength,
    WrongDirection,
    ReadableAfterWritable,
    AvailIdxJump,
    NestedIndirect,
    IndirectLoop,
    IndirectBadLength,
    IndirectWithNext,
    IndirectNotNegotiated,
    IndirectTableOutsideRam,
    IndirectTableInMmio,
    IndirectZeroLengthBuffer,
}

const CASES: [Bad; 26] = [
    Bad::SizeZero,
    Bad::SizeNotPowerOfTwo,
    Bad::SizeAboveMax,
    Bad::DescTableOutsideRam,
    Bad::DescTableInMmio,
    Bad::UsedRingPastEndOfRam,
    Bad::MisalignedDescTable,
    Bad::Loop,
    Bad::NextOutOfRange,
    Bad::HeadOutOfRange,
    Bad::AddrLenOverflow,
    Bad::BufferOutsideRam,
    Bad::BufferPastEndOfRam,
    Bad::BufferInMmio,
    Bad::ZeroLength,
    Bad::WrongDirection,
    Bad::ReadableAfterWritable,
    Bad::AvailIdxJump,
    Bad::NestedIndirect,
    Bad::IndirectLoop,
    Bad::IndirectBadLength,
    Bad::IndirectWithNext,
    Bad::IndirectNotNegotiated,
    Bad::IndirectTableOutsideRam,
    Bad::IndirectTableInMmio,
    Bad::IndirectZeroLengthBuffer,
];

/// How to drive one device type.
struct Kind {
    ty: fn() -> DeviceType,
    /// Makes a device (adding whatever backend it needs, named after `tag`).
    make: fn(&mut Bench, &str) -> Driver,
    /// The queue the cases attack.
    queue: usize,
    /// A well-formed request (its memory prepared).
    good: fn(&Driver) -> Vec<Buf>,
    /// A request with a buffer in the wrong direction for this device type.
    wrong_direction: fn(&Driver) -> Vec<Buf>,
}

fn blk_header(d: &Driver) -> Buf {
    let mut h = [0u8; 16]; // type IN (0), sector 0
    h[0] = blk::VIRTIO_BLK_T_IN as u8;
    d.mem.write(d.data(0), &h).unwrap();
    Buf::r(d.data(0), 16)
}

const BLK: Kind = Kind {
    ty: blk::device_type,
    make: |b, tag| {
        let id = format!("hd-{tag}");
        b.add_drive(&id, &[0x5a; 4096], false);
        b.device(&blk::device_type(), &[("drive", &id)])
    },
    queue: 0,
    good: |d| vec![blk_header(d), Buf::w(d.data(1), 512), Buf::w(d.data(2), 1)],
    // IN request whose data buffer is device-readable.
    wrong_direction: |d| vec![blk_header(d), Buf::r(d.data(1), 512), Buf::w(d.data(2), 1)],
};

const RNG: Kind = Kind {
    ty: rng::device_type,
    make: |b, _| b.device(&rng::device_type(), &[("seed", "5")]),
    queue: 0,
    good: |d| vec![Buf::w(d.data(0), 64)],
    wrong_direction: |d| vec![Buf::r(d.data(0), 64)],
};

const CONSOLE: Kind = Kind {
    ty: console::device_type,
    make: |b, tag| {
        let id = format!("con-{tag}");
        b.add_memory_chardev(&id);
        b.device(&console::device_type(), &[("chardev", &id)])
    },
    // transmitq
    queue: 1,
    good: |d| {
        d.mem.write(d.data(0), b"ok\n").unwrap();
        vec![Buf::r(d.data(0), 3)]
    },
    wrong_direction: |d| vec![Buf::w(d.data(0), 3)],
};

/// A good request round trip: completes once, no error.
fn assert_healthy(d: &mut Driver, k: &Kind, what: &str) {
    let bufs = (k.good)(d);
    let head = d.submit(k.queue, &bufs);
    d.notify(k.queue);
    let used = d.used(k.queue);
    assert_eq!(used.len(), 1, "{what}: the request completes");
    assert_eq!(used[0].0, u32::from(head), "{what}: right head");
    assert_eq!(
        d.status() & status::DEVICE_NEEDS_RESET,
        0,
        "{what}: not broken"
    );
    assert_eq!(d.read(0x060) & INT_CONFIG, 0, "{what}: no config interrupt");
    // Acknowledge so the next check starts from a low line.
    d.write(0x064, d.read(0x060));
    assert!(!d.irq_level(), "{what}: line low after ACK");
}

/// Sets up all queues but `k.queue`, which gets (size, desc, avail, used).
fn setup_with(d: &mut Driver, k: &Kind, size: u32, desc: u64, avail: u64, used: u64) {
    assert!(d.negotiate(u64::MAX));
    let nq = d.with_backend(|b| b.num_queues()) as u32;
    for q in 0..nq {
        if q as usize == k.queue {
            d.setup_queue(q, size, desc, avail, used);
        } else {
            let (a, b, c) = d.ring_addrs(q);
            d.setup_queue(q, u32::from(QSIZE), a, b, c);
        }
    }
    d.driver_ok();
}

/// Applies `bad` to `d`. Returns whether it was a chain case (then nothing must complete).
fn apply(bad: Bad, d: &mut Driver, k: &Kind) -> bool {
    let q = k.queue;
    let (desc, avail, used) = d.ring_addrs(q as u32);
    let size = u32::from(QSIZE);
    match bad {
        Bad::SizeZero => setup_with(d, k, 0, desc, avail, used),
        Bad::SizeNotPowerOfTwo => setup_with(d, k, 12, desc, avail, used),
        Bad::SizeAboveMax => {
            let max = d.read(0x034) * 2;
            setup_with(d, k, max, desc, avail, used);
        }
        Bad::DescTableOutsideRam => setup_with(d, k, size, UNMAPPED, avail, used),
        Bad::DescTableInMmio => setup_with(d, k, size, d.mmio_base(), avail, used),
        Bad::UsedRingPastEndOfRam => setup_with(d, k, size, desc, avail, RAM_BASE + RAM_SIZE - 64),
        Bad::MisalignedDescTable => setup_with(d, k, size, desc + 8, avail, used),
        _ => {
            if bad == Bad::IndirectNotNegotiated {
                d.init_with(!feature::INDIRECT_DESC);
            } else {
                d.init();
            }
            chain_case(bad, d, k);
            d.notify(q);
            return true;
        }
    }
    false
}

fn chain_case(bad: Bad, d: &mut Driver, k: &Kind) {
    let q = k.queue;
    let good = (k.good)(d);
    let with_first = |f: &dyn Fn(&mut Buf)| {
        let mut v = good.clone();
        f(&mut v[0]);
        v
    };
    match bad {
        Bad::Loop => {
            let head = d.place_chain(q, &good);
            // The last descriptor points at itself: the walk must stop on its own.
            let last = (head + good.len() as u16 - 1) % QSIZE;
            d.patch_desc_at(d.desc_addr(q, last), |x| {
                x.flags |= VIRTQ_DESC_F_NEXT;
                x.next = last;
            });
            d.publish(q, head);
        }
        Bad::NextOutOfRange => {
            let head = d.place_chain(q, &good);
            d.patch_desc_at(d.desc_addr(q, head), |x| {
                x.flags |= VIRTQ_DESC_F_NEXT;
                x.next = QSIZE;
            });
            d.publish(q, head);
        }
        Bad::HeadOutOfRange => {
            d.place_chain(q, &good);
            d.publish(q, QSIZE + 3);
        }
        Bad::AddrLenOverflow => {
            d.submit(
                q,
                &with_first(&|b| {
                    b.addr = u64::MAX - 7;
                    b.len = 16;
                }),
            );
        }
        Bad::BufferOutsideRam => {
            d.submit(q, &with_first(&|b| b.addr = UNMAPPED));
        }
        Bad::BufferPastEndOfRam => {
            d.submit(
                q,
                &with_first(&|b| {
                    b.addr = RAM_BASE + RAM_SIZE - 8;
                    b.len = 16;
                }),
            );
        }
        Bad::BufferInMmio => {
            let mmio = d.mmio_base();
            d.submit(q, &with_first(&|b| b.addr = mmio));
        }
        Bad::ZeroLength => {
            d.submit(q, &with_first(&|b| b.len = 0));
        }
        Bad::WrongDirection => {
            let bufs = (k.wrong_direction)(d);
            d.submit(q, &bufs);
        }
        Bad::ReadableAfterWritable => {
            d.submit(q, &[Buf::w(d.data(5), 8), Buf::r(d.data(6), 8)]);
        }
        Bad::AvailIdxJump => {
            let head = d.place_chain(q, &good);
            d.publish(q, head);
            let idx = d.queues[q].avail_idx;
            d.set_avail_idx(q, idx.wrapping_add(QSIZE));
        }
        Bad::NestedIndirect => {
            let head = d.place_indirect(q, &good, 0);
            d.patch_desc_at(d.indirect_table(q), |x| x.flags |= VIRTQ_DESC_F_INDIRECT);
            d.publish(q, head);
        }
        Bad::IndirectLoop => {
            let head = d.place_indirect(q, &good, 0);
            let last = good.len() as u16 - 1;
            d.patch_desc_at(d.indirect_table(q) + 16 * u64::from(last), |x| {
                x.flags |= VIRTQ_DESC_F_NEXT;
                x.next = last;
            });
            d.publish(q, head);
        }
        Bad::IndirectBadLength => {
            let head = d.place_indirect(q, &good, 0);
            d.patch_desc_at(d.desc_addr(q, head), |x| x.len = 24);
            d.publish(q, head);
        }
        Bad::IndirectWithNext => {
            let head = d.place_indirect(q, &good, VIRTQ_DESC_F_NEXT);
            d.publish(q, head);
        }
        Bad::IndirectNotNegotiated => {
            d.submit_indirect(q, &good);
        }
        Bad::IndirectTableOutsideRam | Bad::IndirectTableInMmio => {
            let to = if bad == Bad::IndirectTableInMmio {
                d.mmio_base()
            } else {
                UNMAPPED
            };
            let head = d.place_indirect(q, &good, 0);
            d.patch_desc_at(d.desc_addr(q, head), |x| x.addr = to);
            d.publish(q, head);
        }
        Bad::IndirectZeroLengthBuffer => {
            let head = d.place_indirect(q, &good, 0);
            d.patch_desc_at(d.indirect_table(q), |x| x.len = 0);
            d.publish(q, head);
        }
        _ => unreachable!("setup cases are handled by apply"),
    }
}

/// Whether `e` is the error `bad` is meant to provoke (so each case tests its own check).
fn is_expected(bad: Bad, e: &QueueError) -> bool {
    use QueueError as E;
    match bad {
        Bad::SizeZero | Bad::SizeNotPowerOfTwo | Bad::SizeAboveMax => {
            matches!(e, E::BadSize { .. })
        }
        Bad::DescTableOutsideRam | Bad::DescTableInMmio => {
            matches!(
                e,
                E::NotRam {
                    what: "descriptor table",
                    ..
                }
            )
        }
        Bad::UsedRingPastEndOfRam => matches!(
            e,
            E::NotRam {
                what: "device ring",
                ..
            }
        ),
        Bad::MisalignedDescTable => matches!(e, E::Misaligned { .. }),
        Bad::Loop | Bad::IndirectLoop => matches!(e, E::ChainLoop { .. }),
        Bad::NextOutOfRange | Bad::HeadOutOfRange => matches!(e, E::IndexOutOfRange { .. }),
        Bad::AddrLenOverflow => matches!(e, E::Overflow { what: "buffer", .. }),
        Bad::BufferOutsideRam | Bad::BufferPastEndOfRam => {
            matches!(
                e,
                E::NotRam {
                    what: "buffer",
                    source: AccessError::NotRam(_),
                    ..
                }
            )
        }
        Bad::BufferInMmio => matches!(e, E::NotRam { what: "buffer", .. }),
        Bad::ZeroLength | Bad::IndirectZeroLengthBuffer => matches!(e, E::ZeroLength { .. }),
        Bad::WrongDirection => matches!(e, E::BadRequest(_)),
        Bad::ReadableAfterWritable => matches!(e, E::ReadableAfterWritable { .. }),
        Bad::AvailIdxJump => matches!(e, E::AvailJump { .. }),
        Bad::NestedIndirect => matches!(e, E::NestedIndirect { .. }),
        Bad::IndirectBadLength => matches!(e, E::BadIndirectLength { .. }),
        Bad::IndirectWithNext => matches!(e, E::IndirectWithNext { .. }),
        Bad::IndirectNotNegotiated => matches!(e, E::IndirectNotNegotiated { .. }),
        Bad::IndirectTableOutsideRam | Bad::IndirectTableInMmio => {
            matches!(
                e,
                E::NotRam {
                    what: "indirect table",
                    ..
                }
            )
        }
    }
}

fn run_table(k: &Kind) {
    let name = (k.ty)().name.to_string();
    for (n, &bad) in CASES.iter().enumerate() {
        let what = format!("{name} / {bad:?}");
        let mut bench = Bench::new();
        let mut healthy = (k.make)(&mut bench, &format!("h{n}"));
        let mut faulty = (k.make)(&mut bench, &format!("f{n}"));
        healthy.init();
        assert_healthy(&mut healthy, k, &format!("{what}: healthy before"));

        let chain_case = apply(bad, &mut faulty, k);

        assert_ne!(
            faulty.status() & status::DEVICE_NEEDS_RESET,
            0,
            "{what}: DEVICE_NEEDS_RESET set"
        );
        assert_eq!(faulty.error_count(), 1, "{what}: one error counted");
        let err = faulty
            .with_backend(|b| b.last_error().cloned())
            .expect("error kept");
        assert!(
            is_expected(bad, &err),
            "{what}: unexpected error kind: {err}"
        );
        assert_ne!(
            faulty.read(0x060) & INT_CONFIG,
            0,
            "{what}: config interrupt pending"
        );
        assert!(faulty.irq_level(), "{what}: IRQ line raised");
        if chain_case {
            assert!(faulty.used(k.queue).is_empty(), "{what}: nothing completed");
            // Further notifications are ignored until reset, and not counted again.
            let bufs = (k.good)(&faulty);
            faulty.submit(k.queue, &bufs);
            faulty.notify(k.queue);
            assert!(
                faulty.used(k.queue).is_empty(),
                "{what}: broken device stays idle"
            );
            assert_eq!(faulty.error_count(), 1, "{what}: still one error");
        }
        // ACK clears the interrupt but not the device's need for a reset.
        faulty.write(0x064, INT_CONFIG);
        assert!(!faulty.irq_level(), "{what}: ACK lowers the line");
        assert_ne!(
            faulty.status() & status::DEVICE_NEEDS_RESET,
            0,
            "{what}: still broken"
        );

        // The other transport never noticed.
        assert!(!healthy.irq_level(), "{what}: healthy line untouched");
        assert_eq!(healthy.error_count(), 0, "{what}: healthy error count");
        assert_healthy(&mut healthy, k, &format!("{what}: healthy after"));

        // A reset brings the faulty device back.
        faulty.init();
        assert_healthy(&mut faulty, k, &format!("{what}: faulty after reset"));
        assert_eq!(
            faulty.error_count(),
            1,
            "{what}: the counter survives reset"
        );
    }
}

#[test]
fn test_virtio_blk_malformed_queues_break_only_that_device() {
    run_table(&BLK);
}

#[test]
fn test_virtio_rng_malformed_queues_break_only_that_device() {
    run_table(&RNG);
}

#[test]
fn test_virtio_console_malformed_queues_break_only_that_device() {
    run_table(&CONSOLE);
}

#[test]
fn test_virtio_blk_request_shape_errors_break_the_device() {
    // virtio-blk specific chain shapes: short header, no status byte, OUT with writable data,
    // FLUSH with data.
    type MakeBufs = fn(&Driver) -> Vec<Buf>;
    let cases: [(&str, MakeBufs); 4] = [
        ("short header", |d| {
            vec![Buf::r(d.data(0), 8), Buf::w(d.data(2), 1)]
        }),
        ("no status byte", |d| vec![blk_header(d)]),
        ("OUT with writable data", |d| {
            d.mem
                .write(d.data(0), &[blk::VIRTIO_BLK_T_OUT as u8])
                .unwrap();
            vec![
                Buf::r(d.data(0), 16),
                Buf::w(d.data(1), 512),
                Buf::w(d.data(2), 1),
            ]
        }),
        ("FLUSH with data", |d| {
            d.mem
                .write(d.data(0), &[blk::VIRTIO_BLK_T_FLUSH as u8])
                .unwrap();
            vec![
                Buf::r(d.data(0), 16),
                Buf::r(d.data(1), 512),
                Buf::w(d.data(2), 1),
            ]
        }),
    ];
    for (what, bufs) in cases {
        let mut bench = Bench::new();
        let mut d = (BLK.make)(&mut bench, "x");
        d.init();
        let b = bufs(&d);
        d.submit(0, &b);
        d.notify(0);
        assert_ne!(d.status() & status::DEVICE_NEEDS_RESET, 0, "{what}");
        assert_eq!(d.error_count(), 1, "{what}");
        assert!(d.used(0).is_empty(), "{what}");
    }
}

/// Where the DMA probe sits: MMIO that belongs to no virtio device.
const PROBE: u64 = 0x3000_0000;

#[derive(Clone, Copy, Debug)]
enum ProbeCase {
    DescTable,
    AvailRing,
    UsedRing,
    Buffer,
    BufferSpanningIntoMmio,
    IndirectTable,
}

/// Every place a driver can put an address (queue rings, buffers, indirect tables) aimed at
/// another device's registers: the device refuses it (NEEDS_RESET, one error), and the other
/// device sees no access at all (no DMA re-entrancy into MMIO).
fn run_dma_probe(k: &Kind) {
    let name = (k.ty)().name.to_string();
    for case in [
        ProbeCase::DescTable,
        ProbeCase::AvailRing,
        ProbeCase::UsedRing,
        ProbeCase::Buffer,
        ProbeCase::BufferSpanningIntoMmio,
        ProbeCase::IndirectTable,
    ] {
        let what = format!("{name} / DMA into MMIO: {case:?}");
        let mut bench = Bench::new();
        let hits = bench.add_probe(PROBE, 0x1_0000);
        let mut d = (k.make)(&mut bench, "p");
        let (desc, avail, used) = d.ring_addrs(k.queue as u32);
        let size = u32::from(QSIZE);
        match case {
            ProbeCase::DescTable => setup_with(&mut d, k, size, PROBE, avail, used),
            ProbeCase::AvailRing => setup_with(&mut d, k, size, desc, PROBE, used),
            ProbeCase::UsedRing => setup_with(&mut d, k, size, desc, avail, PROBE),
            ProbeCase::Buffer | ProbeCase::BufferSpanningIntoMmio | ProbeCase::IndirectTable => {
                d.init();
                let mut bufs = (k.good)(&d);
                match case {
                    ProbeCase::Buffer => bufs[0].addr = PROBE + 0x100,
                    ProbeCase::BufferSpanningIntoMmio => {
                        // Starts in RAM, ends past it: never split into RAM + MMIO.
                        bufs[0].addr = RAM_BASE + RAM_SIZE - 4;
                        bufs[0].len = 64;
                    }
                    _ => {}
                }
                if matches!(case, ProbeCase::IndirectTable) {
                    let head = d.place_indirect(k.queue, &bufs, 0);
                    d.patch_desc_at(d.desc_addr(k.queue, head), |x| x.addr = PROBE);
                    d.publish(k.queue, head);
                } else {
                    d.submit(k.queue, &bufs);
                }
                d.notify(k.queue);
                assert!(d.used(k.queue).is_empty(), "{what}: nothing completed");
            }
        }
        assert_eq!(hits.get(), 0, "{what}: the device's DMA reached MMIO");
        assert_ne!(
            d.status() & status::DEVICE_NEEDS_RESET,
            0,
            "{what}: DEVICE_NEEDS_RESET set"
        );
        assert_eq!(d.error_count(), 1, "{what}: one error counted");
        // A reset brings it back, and still nothing touched the probe.
        d.init();
        assert_healthy(&mut d, k, &format!("{what}: after reset"));
        assert_eq!(hits.get(), 0, "{what}: no MMIO access after reset either");
    }
}

#[test]
fn test_virtio_blk_dma_never_reaches_mmio() {
    run_dma_probe(&BLK);
}

#[test]
fn test_virtio_rng_dma_never_reaches_mmio() {
    run_dma_probe(&RNG);
}

#[test]
fn test_virtio_console_dma_never_reaches_mmio() {
    run_dma_probe(&CONSOLE);
}
