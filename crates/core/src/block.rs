//! Block backends for `-drive file=F,format=raw,if=none,id=ID[,readonly=on]`: a host file a
//! disk device reads and writes at byte offsets. Errors come back as values so the device can
//! report an I/O error status to the guest instead of stopping the machine.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::rc::Rc;

use crate::device::DeviceId;

/// One drive.
#[derive(Debug)]
pub struct BlockBackend {
    /// `id=`.
    pub id: String,
    file: RefCell<File>,
    size: u64,
    readonly: bool,
    owner: Cell<Option<DeviceId>>,
}

impl BlockBackend {
    /// Opens `path` (raw format).
    pub fn open(id: &str, path: &Path, readonly: bool) -> std::io::Result<Rc<BlockBackend>> {
        let file = OpenOptions::new().read(true).write(!readonly).open(path)?;
        let size = file.metadata()?.len();
        Ok(Rc::new(BlockBackend {
            id: id.to_string(),
            file: RefCell::new(file),
            size,
            readonly,
            owner: Cell::new(None),
        }))
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether writes are refused.
    pub fn readonly(&self) -> bool {
        self.readonly
    }

    fn check(&self, offset: u64, len: usize) -> std::io::Result<()> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "access at {offset:#x}+{len:#x} is past the end of drive '{}'",
                    self.id
                ),
            )),
        }
    }

    /// Reads exactly `buf.len()` bytes at `offset`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.check(offset, buf.len())?;
        self.file.borrow().read_exact_at(buf, offset)
    }

    /// Writes all of `data` at `offset`.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        if self.readonly {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("drive '{}' is read-only", self.id),
            ));
        }
        self.check(offset, data.len())?;
        self.file.borrow().write_all_at(data, offset)
    }

    /// Flushes to stable storage.
    pub fn flush(&self) -> std::io::Result<()> {
        self.file.borrow().sync_data()
    }

    /// Claims the drive for a device; a drive has one user.
    pub fn attach(&self, dev: DeviceId) -> Result<(), String> {
        match self.owner.get() {
            Some(o) if o != dev => Err(format!(
                "Drive '{}' is already in use by another device",
                self.id
            )),
            _ => {
                self.owner.set(Some(dev));
                Ok(())
            }
        }
    }
}

/// Drives by id.
#[derive(Debug, Default)]
pub struct DriveRegistry {
    map: RefCell<BTreeMap<String, Rc<BlockBackend>>>,
}

impl DriveRegistry {
    /// Adds a drive; duplicate ids are an error.
    pub fn add(&self, d: Rc<BlockBackend>) -> Result<(), String> {
        let mut m = self.map.borrow_mut();
        if m.contains_key(&d.id) {
            return Err(format!("Duplicate drive ID '{}'", d.id));
        }
        m.insert(d.id.clone(), d);
        Ok(())
    }

    /// Looks a drive up.
    pub fn get(&self, id: &str) -> Option<Rc<BlockBackend>> {
        self.map.borrow().get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_drive_reads_writes_and_bounds() {
        let dir = std::env::temp_dir().join(format!("bb-block-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("d.img");
        std::fs::write(&p, vec![0u8; 4096]).expect("img");
        let d = BlockBackend::open("d0", &p, false).expect("open");
        d.write_at(512, b"hello").expect("write");
        let mut b = [0u8; 5];
        d.read_at(512, &mut b).expect("read");
        assert_eq!(&b, b"hello");
        assert!(d.read_at(4095, &mut b).is_err());
        assert!(d.write_at(u64::MAX, b"x").is_err());
        let ro = BlockBackend::open("d1", &p, true).expect("open ro");
        assert!(ro.write_at(0, b"x").is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
