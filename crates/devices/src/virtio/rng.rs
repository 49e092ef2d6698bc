//! `virtio-rng-device`: the virtio entropy device (VIRTIO 1.2 §5.4).
//!
//! One request queue of device-writable buffers, which the device fills with random bytes
//! (at most 64 KiB per buffer; the used length says how many). A device-readable buffer is a
//! protocol error. Bytes come from the host's `/dev/urandom`, or, when the `seed` property is
//! given, from a SplitMix64 generator seeded with it so `-icount` runs repeat exactly (the
//! generator restarts from the seed at every device reset). No features, no config space.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fs::File;
use std::io::Read as _;
use std::rc::Rc;

use breadboard_core::{
    Device, DeviceCtx, DeviceError, DeviceType, GuestMemory, PropKind, PropSpec, PropValue, Props,
};

use super::{Queue, QueueError, VirtioBackend, VirtioDevice};

/// Type name.
pub const TYPE_NAME: &str = "virtio-rng-device";

/// Virtio device ID of an entropy source.
pub const DEVICE_ID: u32 = 4;

/// Most bytes given per buffer: bounds host work for a huge guest buffer.
pub const MAX_PER_BUFFER: u64 = 64 * 1024;

const QUEUE_SIZE: u16 = 64;

enum Source {
    Host(File),
    Seeded { seed: u64, state: u64 },
}

/// SplitMix64 (Steele, Lea, Flood 2014): one 64-bit add and a mix per output word.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The entropy device logic.
pub struct VirtioRng {
    source: Source,
}

impl VirtioRng {
    /// Host entropy from `/dev/urandom`.
    pub fn host() -> std::io::Result<VirtioRng> {
        Ok(VirtioRng {
            source: Source::Host(File::open("/dev/urandom")?),
        })
    }

    /// Deterministic bytes from `seed`.
    pub fn seeded(seed: u64) -> VirtioRng {
        VirtioRng {
            source: Source::Seeded { seed, state: seed },
        }
    }

    fn fill(&mut self, buf: &mut [u8]) -> bool {
        match &mut self.source {
            Source::Host(f) => match f.read_exact(buf) {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!("virtio-rng: reading /dev/urandom: {e}");
                    false
                }
            },
            Source::Seeded { state, .. } => {
                for chunk in buf.chunks_mut(8) {
                    let word = splitmix64(state).to_le_bytes();
                    for (d, s) in chunk.iter_mut().zip(word) {
                        *d = s;
                    }
                }
                true
            }
        }
    }
}

impl VirtioDevice for VirtioRng {
    fn snapshot_save(&self) -> Vec<u8> {
        match &self.source {
            Source::Host(_) => Vec::new(),
            Source::Seeded { state, .. } => state.to_le_bytes().to_vec(),
        }
    }

    fn snapshot_load(
        &mut self,
        data: &[u8],
    ) -> Result<(), breadboard_core::snapshot::SnapshotError> {
        match (&mut self.source, data.len()) {
            (Source::Host(_), 0) => Ok(()),
            (Source::Seeded { state, .. }, 8) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(data);
                *state = u64::from_le_bytes(b);
                Ok(())
            }
            _ => Err(breadboard_core::snapshot::SnapshotError::Corrupt(
                "virtio-rng state does not match its source".into(),
            )),
        }
    }

    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn num_queues(&self) -> usize {
        1
    }

    fn queue_max_size(&self) -> u16 {
        QUEUE_SIZE
    }

    fn process(
        &mut self,
        _queue: usize,
        q: &mut Queue,
        mem: &GuestMemory,
    ) -> Result<bool, QueueError> {
        let mut used = false;
        while let Some(chain) = q.pop(mem)? {
            if chain.readable_len() != 0 {
                return Err(QueueError::BadRequest(
                    "virtio-rng request has device-readable buffers".to_string(),
                ));
            }
            let n = chain.writable_len().min(MAX_PER_BUFFER) as usize;
            let mut buf = vec![0u8; n];
            let mut w = chain.writer();
            if self.fill(&mut buf) {
                w.write(mem, &buf)?;
            }
            q.add_used(mem, chain.head(), w.written() as u32)?;
            used = true;
        }
        Ok(used)
    }

    fn reset(&mut self) {
        if let Source::Seeded { seed, state } = &mut self.source {
            *state = *seed;
        }
    }
}

fn make(props: &Props, ctx: &DeviceCtx<'_>) -> Result<Box<dyn Device>, DeviceError> {
    let rng = match props.get("seed") {
        Some(PropValue::U64(seed)) => VirtioRng::seeded(*seed),
        _ => VirtioRng::host().map_err(|e| {
            DeviceError::Realize(format!("{TYPE_NAME}: cannot open /dev/urandom: {e}"))
        })?,
    };
    Ok(Box::new(VirtioBackend::new(
        ctx.name,
        Box::new(rng),
        Rc::clone(&ctx.dma),
    )))
}

/// The `virtio-rng-device` type (plugs into a `virtio-mmio` transport).
pub fn device_type() -> DeviceType {
    super::backend_type(
        TYPE_NAME,
        "virtio entropy device",
        vec![PropSpec::optional(
            "seed",
            PropKind::Int,
            "deterministic output from this seed (default: host /dev/urandom)",
        )],
        Rc::new(make),
    )
}

#[cfg(test)]
// Tests: a failing unwrap, index or panic is a failed test (as clippy.toml allows).
#[allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::virtio::testutil::{Bench, Buf, Driver};

    fn rng(bench: &mut Bench, props: &[(&str, &str)]) -> Driver {
        let mut d = bench.device(&device_type(), props);
        d.init();
        d
    }

    /// Fills `len` bytes at data slot `slot` and returns (used len, bytes).
    fn draw(d: &mut Driver, slot: u64, len: u32) -> (u32, Vec<u8>) {
        let head = d.submit(0, &[Buf::w(d.data(slot), len)]);
        d.notify(0);
        let used = d.used(0);
        assert_eq!(used.len(), 1);
        assert_eq!(used[0].0, u32::from(head));
        let mut b = vec![0u8; len as usize];
        d.mem.read(d.data(slot), &mut b).unwrap();
        (used[0].1, b)
    }

    #[test]
    fn test_rng_host_fills_buffers_with_distinct_bytes() {
        let mut b = Bench::new();
        let mut d = rng(&mut b, &[]);
        assert_eq!(d.read(0x008), DEVICE_ID);
        assert_eq!(
            d.device_features() >> 32,
            1,
            "only VERSION_1 in the high word"
        );
        let (n1, a) = draw(&mut d, 0, 64);
        let (n2, c) = draw(&mut d, 1, 64);
        assert_eq!((n1, n2), (64, 64));
        assert_ne!(a, vec![0u8; 64]);
        assert_ne!(a, c);
        assert!(d.irq_level());
    }

    #[test]
    fn test_rng_seeded_is_repeatable_and_seed_dependent() {
        let mut b = Bench::new();
        let mut d1 = rng(&mut b, &[("seed", "42")]);
        let mut d2 = rng(&mut b, &[("seed", "42")]);
        let mut d3 = rng(&mut b, &[("seed", "43")]);
        let (_, x1) = draw(&mut d1, 0, 100);
        let (_, x2) = draw(&mut d2, 0, 100);
        let (_, x3) = draw(&mut d3, 0, 100);
        assert_eq!(x1, x2);
        assert_ne!(x1, x3);
        // The stream continues across requests and restarts at device reset.
        let (_, y1) = draw(&mut d1, 1, 100);
        assert_ne!(x1, y1);
        d1.init();
        let (_, z1) = draw(&mut d1, 2, 100);
        assert_eq!(z1, x1);
    }

    #[test]
    fn test_rng_scattered_and_indirect_buffers_are_all_filled() {
        let mut b = Bench::new();
        let mut d = rng(&mut b, &[("seed", "1")]);
        let head = d.submit_indirect(0, &[Buf::w(d.data(0), 8), Buf::w(d.data(1), 24)]);
        d.notify(0);
        assert_eq!(d.used(0), vec![(u32::from(head), 32)]);
        let mut x = [0u8; 24];
        d.mem.read(d.data(1), &mut x).unwrap();
        assert_ne!(x, [0u8; 24]);
    }

    #[test]
    fn test_rng_huge_buffer_gets_at_most_64k() {
        let mut b = Bench::new();
        let mut d = rng(&mut b, &[("seed", "7")]);
        let head = d.submit(0, &[Buf::w(d.data(0), 0x2_0000)]);
        d.notify(0);
        assert_eq!(d.used(0), vec![(u32::from(head), 0x1_0000)]);
    }

    #[test]
    fn test_rng_splitmix_known_values() {
        // Reference outputs of SplitMix64 seeded with 0.
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(&mut s), 0x6e78_9e6a_a1b9_65f4);
    }
}
