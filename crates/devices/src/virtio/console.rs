//! `virtio-console-device`: a single-port virtio console (VIRTIO 1.2 §5.3) on a chardev, i.e.
//! Linux's `hvc0`. No features (no MULTIPORT, no SIZE, no EMERG_WRITE), so there is no control
//! queue: queue 0 is receiveq (device-writable buffers the device fills with input), queue 1
//! transmitq (device-readable buffers the device sends to the chardev).
//!
//! Input arrives through the backend's `Device::can_receive`/`receive`: the main loop offers
//! chardev bytes as fast as the guest has posted receive buffers.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::rc::Rc;

use breadboard_core::{
    Chardev, Device, DeviceCtx, DeviceError, DeviceType, GuestMemory, PropKind, PropSpec, Props,
};

use super::{Queue, QueueError, VirtioBackend, VirtioDevice};

/// Type name.
pub const TYPE_NAME: &str = "virtio-console-device";

/// Virtio device ID of a console.
pub const DEVICE_ID: u32 = 3;

const RECEIVEQ: usize = 0;
const TRANSMITQ: usize = 1;
const QUEUE_SIZE: u16 = 128;
/// `struct virtio_console_config`: cols, rows, max_nr_ports, emerg_wr (all unused here).
const CONFIG_LEN: u64 = 12;
/// Most output bytes taken from one transmit buffer (bounds host work per chain).
const MAX_TX_CHUNK: u64 = 64 * 1024;

/// The console logic.
pub struct VirtioConsole {
    chardev: Option<Rc<Chardev>>,
}

impl VirtioConsole {
    /// A console writing to `chardev` (output is dropped without one).
    pub fn new(chardev: Option<Rc<Chardev>>) -> VirtioConsole {
        VirtioConsole { chardev }
    }

    fn transmit(&mut self, q: &mut Queue, mem: &GuestMemory) -> Result<bool, QueueError> {
        let mut used = false;
        while let Some(chain) = q.pop(mem)? {
            if chain.writable_len() != 0 {
                return Err(QueueError::BadRequest(
                    "virtio-console transmit buffer is device-writable".to_string(),
                ));
            }
            let mut r = chain.reader();
            let mut buf = vec![0u8; chain.readable_len().min(MAX_TX_CHUNK) as usize];
            while r.remaining() > 0 {
                let n = r.read(mem, &mut buf)?;
                if let (Some(c), Some(data)) = (&self.chardev, buf.get(..n)) {
                    c.write(data);
                }
                if n == 0 {
                    break;
                }
            }
            q.add_used(mem, chain.head(), 0)?;
            used = true;
        }
        Ok(used)
    }
}

impl VirtioDevice for VirtioConsole {
    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn num_queues(&self) -> usize {
        2
    }

    fn queue_max_size(&self) -> u16 {
        QUEUE_SIZE
    }

    fn config_len(&self) -> u64 {
        CONFIG_LEN
    }

    fn process(
        &mut self,
        queue: usize,
        q: &mut Queue,
        mem: &GuestMemory,
    ) -> Result<bool, QueueError> {
        match queue {
            TRANSMITQ => self.transmit(q, mem),
            // Receive buffers wait for input; just check the next one is well formed.
            _ => {
                if let Some(chain) = q.peek(mem)?
                    && chain.readable_len() != 0
                {
                    return Err(QueueError::BadRequest(
                        "virtio-console receive buffer is device-readable".to_string(),
                    ));
                }
                Ok(false)
            }
        }
    }

    fn can_receive(&self, queues: &[Queue], mem: &GuestMemory) -> usize {
        let Some(q) = queues.get(RECEIVEQ) else {
            return 0;
        };
        match q.peek(mem) {
            Ok(Some(chain)) => chain.writable_len().min(MAX_TX_CHUNK) as usize,
            Ok(None) => 0,
            // Let `receive` run into the error, so the device reports it.
            Err(_) => 1,
        }
    }

    fn receive(
        &mut self,
        data: &[u8],
        queues: &mut [Queue],
        mem: &GuestMemory,
    ) -> Result<bool, QueueError> {
        let Some(q) = queues.get_mut(RECEIVEQ) else {
            return Ok(false);
        };
        let mut rest = data;
        let mut used = false;
        while !rest.is_empty() {
            let Some(chain) = q.pop(mem)? else {
                tracing::warn!(
                    "virtio-console: {} input bytes dropped, no receive buffer",
                    rest.len()
                );
                break;
            };
            if chain.readable_len() != 0 {
                return Err(QueueError::BadRequest(
                    "virtio-console receive buffer is device-readable".to_string(),
                ));
            }
            let mut w = chain.writer();
            let n = w.write(mem, rest)?;
            rest = rest.get(n..).unwrap_or(&[]);
            q.add_used(mem, chain.head(), n as u32)?;
            used = true;
        }
        Ok(used)
    }
}

fn make(props: &Props, ctx: &DeviceCtx<'_>) -> Result<Box<dyn Device>, DeviceError> {
    let chardev = ctx.chardev(props, "chardev")?;
    Ok(Box::new(VirtioBackend::new(
        ctx.name,
        Box::new(VirtioConsole::new(chardev)),
        Rc::clone(&ctx.dma),
    )))
}

/// The `virtio-console-device` type (plugs into a `virtio-mmio` transport).
pub fn device_type() -> DeviceType {
    super::backend_type(
        TYPE_NAME,
        "virtio console (single port, hvc0)",
        vec![PropSpec::optional(
            "chardev",
            PropKind::Chardev,
            "character device for the port",
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
    use crate::virtio::testutil::{Bench, Buf};

    #[test]
    fn test_console_transmit_reaches_chardev() {
        let mut b = Bench::new();
        let out = b.add_memory_chardev("con");
        let mut d = b.device(&device_type(), &[("chardev", "con")]);
        d.init();
        assert_eq!(d.read(0x008), DEVICE_ID);
        d.mem.write(d.data(0), b"hello ").unwrap();
        d.mem.write(d.data(1), b"world\n").unwrap();
        let head = d.submit(1, &[Buf::r(d.data(0), 6), Buf::r(d.data(1), 6)]);
        d.notify(1);
        assert_eq!(d.used(1), vec![(u32::from(head), 0)]);
        assert_eq!(&out.0.borrow()[..], b"hello world\n");
    }

    #[test]
    fn test_console_receive_fills_posted_buffers() {
        let mut b = Bench::new();
        let _out = b.add_memory_chardev("con");
        let mut d = b.device(&device_type(), &[("chardev", "con")]);
        assert_eq!(
            d.backend.borrow().can_receive(),
            0,
            "nothing before DRIVER_OK"
        );
        d.init();
        assert_eq!(d.backend.borrow().can_receive(), 0, "no buffers posted");
        let h1 = d.submit(0, &[Buf::w(d.data(0), 4)]);
        let h2 = d.submit(0, &[Buf::w(d.data(1), 16)]);
        d.notify(0);
        assert!(d.used(0).is_empty());
        assert_eq!(d.backend.borrow().can_receive(), 4);
        d.backend.borrow_mut().receive(b"abcdefg");
        assert_eq!(d.used(0), vec![(u32::from(h1), 4), (u32::from(h2), 3)]);
        let mut x = [0u8; 7];
        d.mem.read(d.data(0), &mut x[..4]).unwrap();
        d.mem.read(d.data(1), &mut x[4..]).unwrap();
        assert_eq!(&x, b"abcdefg");
        assert!(d.irq_level());
    }
}
