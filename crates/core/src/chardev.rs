//! Character devices as the device side sees them: a named backend it writes to, and input
//! that the main loop hands to the device that owns the chardev, as fast as the device can
//! take it (QEMU's `can_receive`/`receive`).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use crate::device::DeviceId;

/// Where output goes: stdio, a file, a socket, nothing.
pub trait CharBackend {
    /// Writes guest output. Must not block the main loop for long; backends buffer.
    fn write(&mut self, data: &[u8]);
}

/// A backend that drops everything (`-serial null`).
#[derive(Debug, Default)]
pub struct NullBackend;

impl CharBackend for NullBackend {
    fn write(&mut self, _data: &[u8]) {}
}

/// A backend that keeps output in memory, for tests.
#[derive(Debug, Default, Clone)]
pub struct MemoryBackend(pub Rc<RefCell<Vec<u8>>>);

impl CharBackend for MemoryBackend {
    fn write(&mut self, data: &[u8]) {
        self.0.borrow_mut().extend_from_slice(data);
    }
}

/// One chardev: its backend, its pending input and the device that owns it.
pub struct Chardev {
    /// The chardev's id (`serial0`, or `-chardev …,id=`).
    pub id: String,
    backend: RefCell<Box<dyn CharBackend>>,
    input: RefCell<VecDeque<u8>>,
    owner: RefCell<Option<DeviceId>>,
}

impl std::fmt::Debug for Chardev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chardev").field("id", &self.id).finish()
    }
}

/// Input kept per chardev while its device cannot take it (bounded so a flood can't eat memory).
pub const MAX_PENDING_INPUT: usize = 1 << 20;

impl Chardev {
    /// A chardev with the given backend.
    pub fn new(id: &str, backend: Box<dyn CharBackend>) -> Rc<Chardev> {
        Rc::new(Chardev {
            id: id.to_string(),
            backend: RefCell::new(backend),
            input: RefCell::new(VecDeque::new()),
            owner: RefCell::new(None),
        })
    }

    /// Writes device output to the backend.
    pub fn write(&self, data: &[u8]) {
        if let Ok(mut b) = self.backend.try_borrow_mut() {
            b.write(data);
        }
    }

    /// Queues input from the outside world; bytes past [`MAX_PENDING_INPUT`] are dropped.
    pub fn push_input(&self, data: &[u8]) {
        let mut q = self.input.borrow_mut();
        let room = MAX_PENDING_INPUT.saturating_sub(q.len());
        q.extend(data.iter().take(room));
    }

    /// Takes up to `max` queued input bytes.
    pub fn take_input(&self, max: usize) -> Vec<u8> {
        let mut q = self.input.borrow_mut();
        let n = max.min(q.len());
        q.drain(..n).collect()
    }

    /// Bytes waiting.
    pub fn pending_input(&self) -> usize {
        self.input.borrow().len()
    }

    /// Claims the chardev for a device; a chardev has at most one frontend.
    pub fn attach(&self, dev: DeviceId) -> Result<(), String> {
        let mut o = self.owner.borrow_mut();
        match *o {
            Some(other) if other != dev => Err(format!(
                "chardev '{}' is already in use by another device",
                self.id
            )),
            _ => {
                *o = Some(dev);
                Ok(())
            }
        }
    }

    /// Releases the chardev.
    pub fn detach(&self) {
        *self.owner.borrow_mut() = None;
    }

    /// The device that owns it.
    pub fn owner(&self) -> Option<DeviceId> {
        *self.owner.borrow()
    }
}

/// All chardevs of a machine, by id.
#[derive(Debug, Default)]
pub struct ChardevRegistry {
    map: RefCell<BTreeMap<String, Rc<Chardev>>>,
}

impl ChardevRegistry {
    /// Adds a chardev; an id used twice is an error.
    pub fn add(&self, c: Rc<Chardev>) -> Result<(), String> {
        let mut m = self.map.borrow_mut();
        if m.contains_key(&c.id) {
            return Err(format!("Duplicate chardev ID '{}'", c.id));
        }
        m.insert(c.id.clone(), c);
        Ok(())
    }

    /// Looks up a chardev.
    pub fn get(&self, id: &str) -> Option<Rc<Chardev>> {
        self.map.borrow().get(id).cloned()
    }

    /// Every chardev, by id.
    pub fn all(&self) -> Vec<Rc<Chardev>> {
        self.map.borrow().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_chardev_input_is_bounded_and_fifo() {
        let c = Chardev::new("c", Box::new(NullBackend));
        c.push_input(b"abc");
        assert_eq!(c.take_input(2), b"ab");
        assert_eq!(c.take_input(10), b"c");
        c.push_input(&vec![0u8; MAX_PENDING_INPUT + 5]);
        assert_eq!(c.pending_input(), MAX_PENDING_INPUT);
    }

    #[test]
    fn test_chardev_single_owner() {
        let c = Chardev::new("c", Box::new(NullBackend));
        c.attach(1).expect("first");
        c.attach(1).expect("same device again is fine");
        assert!(c.attach(2).is_err());
        let r = ChardevRegistry::default();
        r.add(c.clone()).expect("add");
        assert!(r.add(c).is_err());
    }
}
