//! File seals (`memfd_create(2)`, `fcntl(2)` `F_GET_SEALS`): whether a file that another process
//! sent may be mapped without that process being able to make the mapping fault.
//!
//! A shared mapping of a file whose size later drops below the mapped range raises `SIGBUS` on
//! the next access to the lost pages, which would kill the process that mapped it. The sender
//! keeps its own descriptor, so checking the size once is not enough: the file must also carry
//! `F_SEAL_SHRINK`, which no one can remove again. Each side of vfio-user maps only such files
//! (the client a server's region fds, the server SDK a client's DMA fds) and reaches the rest
//! through messages.

use std::os::fd::BorrowedFd;

use rustix::fs::SealFlags;

/// Whether `fd` can never shrink: it carries `F_SEAL_SHRINK`. Files that cannot be sealed
/// (anything but a memfd or a tmpfs/hugetlbfs file created for sealing) and any error count as
/// "may shrink".
pub fn cannot_shrink(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fcntl_get_seals(fd).is_ok_and(|s| s.contains(SealFlags::SHRINK))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::MemfdFlags;
    use std::os::fd::AsFd;

    #[test]
    fn test_only_a_shrink_sealed_memfd_cannot_shrink() {
        let plain = rustix::fs::memfd_create("bb-seal", MemfdFlags::CLOEXEC).unwrap();
        assert!(!cannot_shrink(plain.as_fd()), "F_SEAL_SEAL only");
        let grow_only = rustix::fs::memfd_create("bb-seal", MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::fcntl_add_seals(&grow_only, SealFlags::GROW).unwrap();
        assert!(!cannot_shrink(grow_only.as_fd()));
        let sealed = rustix::fs::memfd_create("bb-seal", MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&sealed, 0x1000).unwrap();
        rustix::fs::fcntl_add_seals(&sealed, SealFlags::SHRINK).unwrap();
        assert!(cannot_shrink(sealed.as_fd()));
        assert_eq!(
            rustix::fs::ftruncate(&sealed, 0),
            Err(rustix::io::Errno::PERM),
            "the seal holds"
        );
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(!cannot_shrink(file.as_fd()), "not sealable");
    }
}
