//! Fakes for testing device models without a client: guest memory in a vector and IRQ lines
//! that record their levels and pulses.

use super::{DeviceContext, DmaAccess, DmaError, IrqOutput};

/// Guest RAM of `len` bytes at guest physical address `base`, in a plain vector.
#[derive(Clone, Debug)]
pub struct FakeDma {
    /// First guest physical address.
    pub base: u64,
    /// The bytes.
    pub mem: Vec<u8>,
    /// Accesses made (address, length, is_write), in order.
    pub log: Vec<(u64, usize, bool)>,
}

impl FakeDma {
    /// Zeroed memory.
    pub fn new(base: u64, len: usize) -> Self {
        Self {
            base,
            mem: vec![0; len],
            log: Vec::new(),
        }
    }

    fn range(&self, addr: u64, len: usize) -> Result<std::ops::Range<usize>, DmaError> {
        let err = DmaError::Unmapped { addr, len };
        let off = addr.checked_sub(self.base).ok_or(err.clone())?;
        let off = usize::try_from(off).map_err(|_| err.clone())?;
        let end = off.checked_add(len).ok_or(err.clone())?;
        if end > self.mem.len() {
            return Err(err);
        }
        Ok(off..end)
    }

    /// Bytes at a guest address (empty if the range is outside the memory).
    pub fn bytes(&self, addr: u64, len: usize) -> &[u8] {
        let r = self.range(addr, len).unwrap_or(0..0);
        self.mem.get(r).unwrap_or(&[])
    }

    /// Store bytes at a guest address (test set-up; ignores out-of-range).
    pub fn put(&mut self, addr: u64, data: &[u8]) {
        if let Ok(r) = self.range(addr, data.len())
            && let Some(d) = self.mem.get_mut(r)
        {
            d.copy_from_slice(data);
        }
    }
}

impl DmaAccess for FakeDma {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let r = self.range(addr, buf.len())?;
        self.log.push((addr, buf.len(), false));
        buf.copy_from_slice(self.mem.get(r).unwrap_or(&[]));
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DmaError> {
        let r = self.range(addr, data.len())?;
        self.log.push((addr, data.len(), true));
        if let Some(d) = self.mem.get_mut(r) {
            d.copy_from_slice(data);
        }
        Ok(())
    }
}

/// IRQ lines that remember their level and count rising edges and pulses.
#[derive(Clone, Debug, Default)]
pub struct RecordingIrqs {
    /// Current level per line index.
    pub levels: Vec<bool>,
    /// Rising edges (level lines) plus pulses (edge lines) per index.
    pub raised: Vec<u32>,
}

impl RecordingIrqs {
    /// `n` lines, low.
    pub fn new(n: usize) -> Self {
        Self {
            levels: vec![false; n],
            raised: vec![0; n],
        }
    }

    /// Level of line `i` (false if absent).
    pub fn level(&self, i: usize) -> bool {
        self.levels.get(i).copied().unwrap_or(false)
    }

    /// How many times line `i` rose or pulsed.
    pub fn raised(&self, i: usize) -> u32 {
        self.raised.get(i).copied().unwrap_or(0)
    }

    fn grow(&mut self, i: usize) {
        if self.levels.len() <= i {
            self.levels.resize(i + 1, false);
            self.raised.resize(i + 1, 0);
        }
    }
}

impl IrqOutput for RecordingIrqs {
    fn set_level(&mut self, index: u32, high: bool) {
        let i = index as usize;
        self.grow(i);
        if let (Some(l), Some(r)) = (self.levels.get_mut(i), self.raised.get_mut(i)) {
            if high && !*l {
                *r += 1;
            }
            *l = high;
        }
    }

    fn pulse(&mut self, index: u32) {
        let i = index as usize;
        self.grow(i);
        if let Some(r) = self.raised.get_mut(i) {
            *r += 1;
        }
    }
}

/// A context over the two fakes.
pub fn context<'a>(dma: &'a mut FakeDma, irq: &'a mut RecordingIrqs) -> DeviceContext<'a> {
    DeviceContext { dma, irq }
}
