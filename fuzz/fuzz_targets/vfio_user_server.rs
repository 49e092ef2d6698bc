//! vfio-user messages from a server (untrusted, SECURITY.md): the input is the byte stream a
//! server sends. Every body decoder sees the raw bytes; then a client on a socket pair reads
//! the stream (after a well-formed VERSION reply when the first byte is even, so inputs reach
//! past the handshake) while it makes the calls the vfio-platform device makes, with a DMA
//! window the server's DMA_READ/DMA_WRITE requests may aim at. Nothing may panic, hang or
//! touch memory outside the window.
#![no_main]
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use breadboard_vfio_user::client::{Client, ClientConfig, DmaWindow};
use breadboard_vfio_user::protocol::{
    Command, DmaAccess, DmaData, DmaMap, DmaUnmap, Header, IrqSet, RegionAccess, RegionData,
    Version, Wire, vfio_device_info, vfio_irq_info, vfio_region_info,
};
use libfuzzer_sys::fuzz_target;

fn decoders(data: &[u8]) {
    let _ = Header::decode(data);
    let _ = Version::decode(data);
    let _ = vfio_device_info::decode(data);
    let _ = vfio_region_info::decode(data);
    let _ = vfio_irq_info::decode(data);
    let _ = DmaMap::decode(data);
    let _ = DmaUnmap::decode(data);
    let _ = IrqSet::decode(data);
    let _ = RegionAccess::decode(data);
    let _ = RegionData::decode(data);
    let _ = DmaAccess::decode(data);
    let _ = DmaData::decode(data);
}

fuzz_target!(|data: &[u8]| {
    decoders(data);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let rest = rest.get(..rest.len().min(60 << 10)).unwrap_or(rest);
    let Ok((client_end, mut server_end)) = UnixStream::pair() else {
        return;
    };
    if mode & 1 == 0 {
        let v = Version {
            major: 0,
            minor: 1,
            caps: Default::default(),
        }
        .to_bytes();
        let h = Header::new_reply(&Header::new_command(0, Command::Version, 0), v.len());
        let _ = server_end.write_all(&h.encode());
        let _ = server_end.write_all(&v);
    }
    let _ = server_end.write_all(rest);
    // EOF after the stream: the client never waits out its timeout on a silent server.
    let _ = server_end.shutdown(std::net::Shutdown::Write);
    let config = ClientConfig {
        timeout: Duration::from_millis(50),
        ..ClientConfig::default()
    };
    let Ok(client) = Client::from_stream(client_end, "fuzz".into(), config) else {
        return;
    };
    let mut ram = vec![0u8; 4096];
    let Some(host) = std::ptr::NonNull::new(ram.as_mut_ptr()) else {
        return;
    };
    // SAFETY: `ram` outlives the mapping: the client is dropped (its reader thread joined,
    // nothing served any more) before `ram` at the end of this closure.
    let _ = unsafe {
        client.dma_map(
            DmaWindow {
                iova: 0x8000_0000,
                size: 4096,
                host,
                writable: mode & 2 == 0,
            },
            None,
            0,
        )
    };
    let _ = client.device_info();
    for i in 0..3 {
        let _ = client.region_info(i);
        let _ = client.irq_info(i);
    }
    let mut buf = [0u8; 8];
    let _ = client.region_read(0, 0, &mut buf[..4]);
    let _ = client.region_write(0, 4, &[1, 2, 3, 4]);
    let _ = client.region_write_posted(0, 8, &[5, 6, 7, 8]);
    let _ = client.reset();
    let _ = client.dma_unmap(0x8000_0000, 4096);
    let _ = client.broken_reason();
    drop(client);
    drop(ram);
});
