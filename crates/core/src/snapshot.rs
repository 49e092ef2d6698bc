//! A small, serde-free byte format for snapshots: little-endian integers, length-prefixed
//! byte strings, and a reader that reports truncation instead of panicking.

use thiserror::Error;

/// Why a snapshot could not be written or read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// The device keeps state it cannot save.
    #[error("device '{0}' does not support snapshots")]
    Unsupported(String),
    /// The data ended early or has a bad value.
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
    /// The snapshot was taken on another machine.
    #[error("snapshot mismatch: {0}")]
    Mismatch(String),
    /// File I/O.
    #[error("{0}")]
    Io(String),
}

/// Appends values to a byte buffer.
#[derive(Debug, Default)]
pub struct SnapWriter {
    buf: Vec<u8>,
}

impl SnapWriter {
    /// An empty writer.
    pub fn new() -> SnapWriter {
        SnapWriter::default()
    }
    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// A bool as one byte.
    pub fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }
    /// u16 LE.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// u32 LE.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// u64 LE.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Length-prefixed (u64) bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(v);
    }
    /// Length-prefixed string.
    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    /// A u32 vector, length-prefixed.
    pub fn u32s(&mut self, v: &[u32]) {
        self.u64(v.len() as u64);
        for x in v {
            self.u32(*x);
        }
    }
    /// The bytes written.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads values back; every read checks the remaining length.
#[derive(Debug)]
pub struct SnapReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> SnapReader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> SnapReader<'a> {
        SnapReader { data, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or_else(|| SnapshotError::Corrupt(format!("truncated at byte {}", self.pos)))?;
        let s = self.data.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.arr::<1>()?[0])
    }
    /// A bool.
    pub fn bool(&mut self) -> Result<bool, SnapshotError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(SnapshotError::Corrupt(format!("bad bool {v}"))),
        }
    }
    /// u16 LE.
    pub fn u16(&mut self) -> Result<u16, SnapshotError> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    /// u32 LE.
    pub fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    /// u64 LE.
    pub fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    /// Length-prefixed bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], SnapshotError> {
        let n = self.u64()?;
        let n =
            usize::try_from(n).map_err(|_| SnapshotError::Corrupt("length too large".into()))?;
        self.take(n)
    }
    /// Length-prefixed string.
    pub fn str(&mut self) -> Result<String, SnapshotError> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| SnapshotError::Corrupt("bad string".into()))
    }
    /// A u32 vector that must have `len` entries.
    pub fn u32s(&mut self, len: usize) -> Result<Vec<u32>, SnapshotError> {
        let n = self.u64()?;
        if n != len as u64 {
            return Err(SnapshotError::Corrupt(format!(
                "expected {len} words, found {n}"
            )));
        }
        (0..len).map(|_| self.u32()).collect()
    }
    /// Fails unless every byte was read.
    pub fn end(&self) -> Result<(), SnapshotError> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(SnapshotError::Corrupt(format!(
                "{} unexpected trailing bytes",
                self.data.len() - self.pos
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn test_values_round_trip_and_truncation_is_an_error() {
        let mut w = SnapWriter::new();
        w.u8(7);
        w.bool(true);
        w.u16(0x1234);
        w.u32(0xdead_beef);
        w.u64(u64::MAX);
        w.str("cpu");
        w.u32s(&[1, 2, 3]);
        let b = w.finish();
        let mut r = SnapReader::new(&b);
        assert_eq!(r.u8().unwrap(), 7);
        assert!(r.bool().unwrap());
        assert_eq!(r.u16().unwrap(), 0x1234);
        assert_eq!(r.u32().unwrap(), 0xdead_beef);
        assert_eq!(r.u64().unwrap(), u64::MAX);
        assert_eq!(r.str().unwrap(), "cpu");
        assert_eq!(r.u32s(3).unwrap(), vec![1, 2, 3]);
        r.end().unwrap();
        for n in 0..b.len() {
            let mut r = SnapReader::new(&b[..n]);
            let all = (|| -> Result<(), SnapshotError> {
                r.u8()?;
                r.bool()?;
                r.u16()?;
                r.u32()?;
                r.u64()?;
                r.str()?;
                r.u32s(3)?;
                Ok(())
            })();
            assert!(all.is_err(), "{n} bytes parsed");
        }
        // A huge length prefix fails cleanly instead of allocating.
        let mut w = SnapWriter::new();
        w.u64(u64::MAX);
        let b = w.finish();
        assert!(SnapReader::new(&b).bytes().is_err());
    }
}
