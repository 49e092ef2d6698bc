//! `bb-vfio-example --socket PATH --device checksum|virtio-rng [--once]`: serve an example
//! platform device over vfio-user until killed (or, with `--once`, until the first client
//! leaves).

use anyhow::{Context, bail};
use breadboard_vfio_user::server::{PlatformDevice, Server, ServerOptions};
use breadboard_vfio_user_example::{checksum::ChecksumEngine, virtio_rng::VirtioRng};

const USAGE: &str = "usage: bb-vfio-example --socket PATH --device checksum|virtio-rng [--once]";

struct Args {
    socket: String,
    device: String,
    once: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let (mut socket, mut device, mut once) = (None, None, false);
    while let Some(a) = args.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (a.clone(), None),
        };
        let mut value = |name: &str| -> anyhow::Result<String> {
            match inline.clone().or_else(|| args.next()) {
                Some(v) => Ok(v),
                None => bail!("{name} needs a value\n{USAGE}"),
            }
        };
        match key.as_str() {
            "--socket" => socket = Some(value("--socket")?),
            "--device" => device = Some(value("--device")?),
            "--once" => once = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    match (socket, device) {
        (Some(socket), Some(device)) => Ok(Args {
            socket,
            device,
            once,
        }),
        _ => bail!("--socket and --device are required\n{USAGE}"),
    }
}

fn serve<D: PlatformDevice>(dev: D, args: &Args) -> anyhow::Result<()> {
    let opts = ServerOptions {
        once: args.once,
        ..Default::default()
    };
    let mut server = Server::bind(&args.socket, dev, opts)
        .with_context(|| format!("cannot listen on {}", args.socket))?;
    tracing::info!("serving {} on {}", args.device, args.socket);
    server.run().context("server stopped")?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .init();
    let args = parse(std::env::args().skip(1))?;
    match args.device.as_str() {
        "checksum" => serve(
            ChecksumEngine::new().context("creating the checksum engine")?,
            &args,
        ),
        "virtio-rng" => serve(
            VirtioRng::with_urandom().context("opening /dev/urandom")?,
            &args,
        ),
        other => bail!("unknown device {other:?} (checksum, virtio-rng)"),
    }
}
