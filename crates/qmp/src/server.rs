//! The QMP server: listening sockets (`-qmp unix:…`/`tcp:…`), one reader and one writer
//! thread per client, and event broadcast.
//!
//! Threads never touch the machine. A client's reader parses its input; protocol errors are
//! answered at once, commands go to the main loop as `Event::Call` closures and the reader
//! waits for each to finish before reading on (QMP without out-of-band execution is in order).
//! The closure runs [`execute`](crate::commands::execute), queues the reply on the client's
//! writer, then any events the command deferred: so a client always sees `STOP` before the
//! reply of `stop`, and the reply of `system_reset` before `RESET`, as from QEMU. The main loop
//! only ever sends on unbounded channels, so no client can block it.
// Reads guest, file, socket or plugin input: no panicking shortcuts (SECURITY.md, issue 9).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, ToSocketAddrs};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use breadboard_platform::machine::Machine;
use breadboard_platform::qmp_ops::{RunEvent, RunHooks};
use breadboard_platform::run::MachineCall;
use breadboard_platform::{BootOptions, Event};
use serde_json::{Value, json};

use crate::commands::{self, QmpContext, RunStatus};
use crate::error::{QmpError, ServerError};
use crate::protocol::{self, Action, Request, Session};

/// Where a QMP server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// A Unix socket (created mode 0600; an old socket file at the path is replaced).
    Unix(PathBuf),
    /// A TCP address.
    Tcp {
        /// Host name or address; empty means every interface.
        host: String,
        /// Port.
        port: u16,
    },
}

/// A `-qmp` value, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenSpec {
    /// Address.
    pub addr: ListenAddr,
    /// `wait=on`: accept the first client before going on.
    pub wait: bool,
    /// `allow-remote=on`: a TCP server may listen on a non-loopback address.
    pub allow_remote: bool,
}

fn flag(spec: &str, key: &str, v: Option<&str>) -> Result<bool, ServerError> {
    match v {
        None | Some("on" | "yes" | "true") => Ok(true),
        Some("off" | "no" | "false") => Ok(false),
        Some(other) => Err(ServerError::Spec {
            spec: spec.to_string(),
            reason: format!("Parameter '{key}' expects 'on' or 'off', not '{other}'"),
        }),
    }
}

impl ListenSpec {
    /// A Unix socket server that does not wait for a client.
    pub fn unix(path: impl Into<PathBuf>) -> ListenSpec {
        ListenSpec {
            addr: ListenAddr::Unix(path.into()),
            wait: false,
            allow_remote: false,
        }
    }

    /// A TCP server that does not wait for a client.
    pub fn tcp(host: &str, port: u16, allow_remote: bool) -> ListenSpec {
        ListenSpec {
            addr: ListenAddr::Tcp {
                host: host.to_string(),
                port,
            },
            wait: false,
            allow_remote,
        }
    }

    /// Parses QEMU's legacy syntax: `unix:PATH[,server=on][,wait=off]` or
    /// `tcp:[HOST]:PORT[,server=on][,wait=off][,allow-remote=on]` (`server`/`nowait` flags too).
    pub fn parse(spec: &str) -> Result<ListenSpec, ServerError> {
        let bad = |reason: String| ServerError::Spec {
            spec: spec.to_string(),
            reason,
        };
        let (addr, opts) = if let Some(rest) = spec.strip_prefix("unix:") {
            let (path, opts) = rest.split_once(',').unwrap_or((rest, ""));
            if path.is_empty() {
                return Err(bad("a Unix socket needs a path".into()));
            }
            (ListenAddr::Unix(PathBuf::from(path)), opts)
        } else if let Some(rest) = spec.strip_prefix("tcp:") {
            let (hp, opts) = rest.split_once(',').unwrap_or((rest, ""));
            let (host, port) = match hp.strip_prefix('[') {
                Some(b) => b
                    .split_once("]:")
                    .ok_or_else(|| bad("expected [HOST]:PORT".into()))?,
                None => hp
                    .rsplit_once(':')
                    .ok_or_else(|| bad("expected HOST:PORT".into()))?,
            };
            let port = port
                .parse::<u16>()
                .map_err(|_| bad(format!("invalid port '{port}'")))?;
            (
                ListenAddr::Tcp {
                    host: host.to_string(),
                    port,
                },
                opts,
            )
        } else {
            return Err(bad(
                "breadboard serves QMP on unix:PATH or tcp:HOST:PORT sockets".into(),
            ));
        };
        let mut server = false;
        let mut wait = true;
        let mut allow_remote = false;
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            let (k, v) = match o.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (o, None),
            };
            match k {
                "server" => server = flag(spec, k, v)?,
                "wait" => wait = flag(spec, k, v)?,
                "nowait" if v.is_none() => wait = false,
                "allow-remote" => allow_remote = flag(spec, k, v)?,
                _ => return Err(bad(format!("Invalid parameter '{k}'"))),
            }
        }
        if !server {
            return Err(bad(
                "breadboard serves QMP only as a server: add server=on".into()
            ));
        }
        Ok(ListenSpec {
            addr,
            wait,
            allow_remote,
        })
    }

    fn display(&self) -> String {
        match &self.addr {
            ListenAddr::Unix(p) => format!("unix:{}", p.display()),
            ListenAddr::Tcp { host, port } => format!("tcp:{host}:{port}"),
        }
    }
}

/// A client's outgoing queue, drained to its socket by its writer thread.
#[derive(Clone, Debug)]
struct Outgoing {
    tx: Sender<String>,
    pending: Arc<AtomicUsize>,
}

impl Outgoing {
    fn send(&self, line: String) -> bool {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.tx.send(line).is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }
}

#[derive(Debug)]
struct ClientSlot {
    id: u64,
    negotiated: Arc<AtomicBool>,
    out: Outgoing,
}

/// Sends events to every client that finished capabilities negotiation.
#[derive(Clone, Debug, Default)]
pub struct Broadcaster {
    clients: Arc<Mutex<Vec<ClientSlot>>>,
}

impl Broadcaster {
    fn lock(&self) -> MutexGuard<'_, Vec<ClientSlot>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends event `name` (with `data`, if any) to every negotiated client.
    pub fn emit(&self, name: &str, data: Option<Value>) {
        let line = protocol::event(name, data.as_ref());
        self.lock()
            .retain(|c| !c.negotiated.load(Ordering::SeqCst) || c.out.send(line.clone()));
    }

    /// Number of connected clients.
    pub fn clients(&self) -> usize {
        self.lock().len()
    }

    fn add(&self, slot: ClientSlot) {
        self.lock().push(slot);
    }

    fn remove(&self, id: u64) {
        self.lock().retain(|c| c.id != id);
    }

    /// Waits (at most `timeout`) until every queued line was written to its client.
    pub fn flush(&self, timeout: Duration) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            let busy = self
                .lock()
                .iter()
                .any(|c| c.out.pending.load(Ordering::SeqCst) > 0);
            if !busy {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

struct Shared {
    ctx: Mutex<QmpContext>,
    events: Broadcaster,
    main_loop: Sender<Event>,
    next_client: AtomicU64,
}

/// A running QMP service: its context, its clients, its listeners. Cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("clients", &self.shared.events.clients())
            .finish()
    }
}

/// Starts a QMP server on `spec` (QEMU's `-qmp` syntax) that posts commands to `tx`, with a
/// default context (no boot images, not `-S`). Use [`ServerHandle::new`] and
/// [`ServerHandle::listen`] to give it a context or listen on several sockets.
pub fn start_server(spec: &str, tx: Sender<Event>) -> Result<ServerHandle, ServerError> {
    let h = ServerHandle::new(QmpContext::new(BootOptions::default(), false), tx);
    h.listen(&ListenSpec::parse(spec)?)?;
    Ok(h)
}

impl ServerHandle {
    /// A service with `ctx` whose commands run on the main loop behind `tx`.
    pub fn new(mut ctx: QmpContext, tx: Sender<Event>) -> ServerHandle {
        ctx.main_loop = Some(tx.clone());
        let events = ctx.events.clone();
        ServerHandle {
            shared: Arc::new(Shared {
                ctx: Mutex::new(ctx),
                events,
                main_loop: tx,
                next_client: AtomicU64::new(0),
            }),
        }
    }

    /// A service that serves no sockets: it runs scripts and commands on the calling thread
    /// and is the main loop's [`RunHooks`] (`-S`), but keeps no sender of the main loop's
    /// queue, so the loop still sees "no event source left" when every other one is gone.
    /// [`listen`](Self::listen) on it accepts clients whose commands are refused.
    pub fn detached(ctx: QmpContext) -> ServerHandle {
        let (tx, _) = channel();
        ServerHandle::new(ctx, tx)
    }

    /// The shared context (run state, boot images, quit request). Held briefly: clients'
    /// commands lock it too.
    pub fn context(&self) -> MutexGuard<'_, QmpContext> {
        self.shared
            .ctx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends an event to every negotiated client (`STOP`, `RESUME`, `RESET`, `POWERDOWN`,
    /// `SHUTDOWN`, …).
    pub fn emit(&self, name: &str, data: Option<Value>) {
        self.shared.events.emit(name, data);
    }

    /// Waits (at most `timeout`) until every client got everything queued for it; call it
    /// before the process exits so the last replies and `SHUTDOWN` reach the clients.
    pub fn flush(&self, timeout: Duration) {
        self.shared.events.flush(timeout);
    }

    /// Runs a command on the calling (main) thread, as a client's would run: used by the
    /// preconfig loop and the script runner.
    pub fn execute(
        &self,
        machine: &mut Machine,
        command: &str,
        args: &serde_json::Map<String, Value>,
    ) -> Result<Value, QmpError> {
        let mut ctx = self.context();
        let r = commands::execute(machine, &mut ctx, command, args);
        ctx.flush_deferred();
        r
    }

    /// Runs a qmp-shell script during preconfig (see [`crate::script`]).
    pub fn run_script(
        &self,
        path: &Path,
        machine: &mut Machine,
    ) -> Result<usize, crate::script::ScriptError> {
        let mut ctx = self.context();
        crate::script::run_script(path, machine, &mut ctx)
    }

    /// Starts listening on `spec`. With `wait=on` the first client is accepted before this
    /// returns.
    pub fn listen(&self, spec: &ListenSpec) -> Result<(), ServerError> {
        let name = spec.display();
        let listen_err = |source: std::io::Error| ServerError::Listen {
            spec: name.clone(),
            source,
        };
        match &spec.addr {
            ListenAddr::Unix(path) => {
                let l = bind_unix(path).map_err(listen_err)?;
                if spec.wait {
                    let (s, _) = l.accept().map_err(listen_err)?;
                    self.spawn_client_unix(s)?;
                }
                let me = self.clone();
                spawn(&format!("qmp-accept {name}"), move || {
                    for s in l.incoming() {
                        match s {
                            Ok(s) => {
                                if let Err(e) = me.spawn_client_unix(s) {
                                    tracing::error!("QMP: {e}");
                                }
                            }
                            Err(e) => tracing::warn!("QMP accept: {e}"),
                        }
                    }
                })?;
            }
            ListenAddr::Tcp { host, port } => {
                let bind_host = if host.is_empty() {
                    "0.0.0.0"
                } else {
                    host.as_str()
                };
                let addrs: Vec<std::net::SocketAddr> = (bind_host, *port)
                    .to_socket_addrs()
                    .map_err(listen_err)?
                    .collect();
                let remote = addrs.is_empty() || addrs.iter().any(|a| !is_loopback(a.ip()));
                if remote && !spec.allow_remote {
                    return Err(ServerError::Spec {
                        spec: name,
                        reason: "refusing to serve QMP on a non-loopback address: anyone who \
                                 reaches it controls the machine (add allow-remote=on to allow it)"
                            .into(),
                    });
                }
                let l = TcpListener::bind(addrs.as_slice()).map_err(listen_err)?;
                if spec.wait {
                    let (s, _) = l.accept().map_err(listen_err)?;
                    self.spawn_client_tcp(s)?;
                }
                let me = self.clone();
                spawn(&format!("qmp-accept {name}"), move || {
                    for s in l.incoming() {
                        match s {
                            Ok(s) => {
                                if let Err(e) = me.spawn_client_tcp(s) {
                                    tracing::error!("QMP: {e}");
                                }
                            }
                            Err(e) => tracing::warn!("QMP accept: {e}"),
                        }
                    }
                })?;
            }
        }
        Ok(())
    }

    fn spawn_client_unix(&self, s: std::os::unix::net::UnixStream) -> Result<(), ServerError> {
        let w = s.try_clone().map_err(ServerError::Thread)?;
        self.spawn_client(Box::new(s), Box::new(w))
    }

    fn spawn_client_tcp(&self, s: std::net::TcpStream) -> Result<(), ServerError> {
        let _ = s.set_nodelay(true);
        let w = s.try_clone().map_err(ServerError::Thread)?;
        self.spawn_client(Box::new(s), Box::new(w))
    }

    fn spawn_client(
        &self,
        reader: Box<dyn Read + Send>,
        mut writer: Box<dyn Write + Send>,
    ) -> Result<(), ServerError> {
        let id = self.shared.next_client.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = channel::<String>();
        let out = Outgoing {
            tx,
            pending: Arc::new(AtomicUsize::new(0)),
        };
        let pending = Arc::clone(&out.pending);
        spawn(&format!("qmp-writer-{id}"), move || {
            for line in rx {
                let ok = writer
                    .write_all(line.as_bytes())
                    .and_then(|()| writer.flush());
                pending.fetch_sub(1, Ordering::SeqCst);
                if ok.is_err() {
                    break;
                }
            }
        })?;
        let me = self.clone();
        spawn(&format!("qmp-client-{id}"), move || {
            me.serve(id, reader, out)
        })
    }

    /// One client's reader loop.
    fn serve(&self, id: u64, mut reader: Box<dyn Read + Send>, out: Outgoing) {
        let negotiated = Arc::new(AtomicBool::new(false));
        self.shared.events.add(ClientSlot {
            id,
            negotiated: Arc::clone(&negotiated),
            out: out.clone(),
        });
        out.send(protocol::greeting());
        let mut session = Session::new();
        let mut buf = vec![0u8; 64 * 1024];
        'client: loop {
            let n = match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let Some(bytes) = buf.get(..n) else { break };
            for action in session.feed(bytes) {
                match action {
                    Action::Reply(line) => {
                        out.send(line);
                    }
                    Action::Execute(req) => {
                        if !self.dispatch(req, &out) {
                            break 'client;
                        }
                    }
                }
                negotiated.store(session.negotiated(), Ordering::SeqCst);
            }
        }
        self.shared.events.remove(id);
    }

    /// Runs `req` on the main loop and waits for it. False if the main loop is gone.
    fn dispatch(&self, req: Request, out: &Outgoing) -> bool {
        let (done_tx, done_rx) = channel::<()>();
        let shared = Arc::clone(&self.shared);
        let out2 = out.clone();
        let call: MachineCall = Box::new(move |m: &mut Machine| {
            let mut ctx = shared.ctx.lock().unwrap_or_else(PoisonError::into_inner);
            let r = commands::execute(m, &mut ctx, &req.command, &req.arguments);
            out2.send(protocol::reply(&r, req.id.as_ref()));
            ctx.flush_deferred();
            drop(ctx);
            let _ = done_tx.send(());
        });
        if self.shared.main_loop.send(Event::Call(call)).is_err() {
            out.send(protocol::reply(
                &Err(QmpError::generic("breadboard is shutting down")),
                None,
            ));
            return false;
        }
        done_rx.recv().is_ok()
    }
}

impl RunHooks for ServerHandle {
    fn may_run(&mut self) -> bool {
        let mut c = self.context();
        if c.status == RunStatus::Running && !c.quit_requested {
            c.started = true;
            return true;
        }
        false
    }

    fn event(&mut self, ev: RunEvent) {
        match ev {
            RunEvent::Reset { guest, reason } => {
                self.emit("RESET", Some(json!({"guest": guest, "reason": reason})));
            }
            RunEvent::Shutdown { guest, reason } => {
                self.emit("SHUTDOWN", Some(json!({"guest": guest, "reason": reason})));
            }
        }
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), ServerError> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map(|_| ())
        .map_err(ServerError::Thread)
}

/// Binds a Unix socket readable and writable by its owner only: the mode is set between
/// `bind` and `listen`, so nobody else can ever connect.
fn bind_unix(path: &Path) -> std::io::Result<UnixListener> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    // QEMU replaces a stale socket file; anything else at the path is an error from bind.
    if std::fs::symlink_metadata(path)
        .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
    {
        let _ = std::fs::remove_file(path);
    }
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let addr = SocketAddrUnix::new(path)?;
    rustix::net::bind(&fd, &addr)?;
    rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(0o600))?;
    rustix::net::listen(&fd, 16)?;
    Ok(UnixListener::from(fd))
}

#[cfg(test)]
// Tests: a failing unwrap, index or panic is a failed test (as clippy.toml allows).
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn test_listen_spec_parses_qemu_syntax() {
        let s = ListenSpec::parse("unix:/tmp/q.sock,server=on,wait=off").unwrap();
        assert_eq!(s, ListenSpec::unix("/tmp/q.sock"));
        let s = ListenSpec::parse("tcp:127.0.0.1:4444,server,nowait").unwrap();
        assert_eq!(s, ListenSpec::tcp("127.0.0.1", 4444, false));
        let s = ListenSpec::parse("tcp:[::1]:4444,server=on,wait=off,allow-remote=on").unwrap();
        assert_eq!(s, ListenSpec::tcp("::1", 4444, true));
        assert!(ListenSpec::parse("tcp::4444,server=on").unwrap().wait);
        let e = ListenSpec::parse("unix:/tmp/q.sock")
            .unwrap_err()
            .to_string();
        assert!(e.contains("add server=on"), "{e}");
        assert!(ListenSpec::parse("tcp:host,server=on").is_err());
        assert!(ListenSpec::parse("stdio").is_err());
        assert!(ListenSpec::parse("unix:/x,server=on,bogus=1").is_err());
    }

    #[test]
    fn test_tcp_refuses_non_loopback_without_allow_remote() {
        let (tx, _rx) = channel();
        let h = ServerHandle::new(QmpContext::new(BootOptions::default(), false), tx);
        let e = h
            .listen(&ListenSpec::tcp("0.0.0.0", 0, false))
            .unwrap_err()
            .to_string();
        assert!(e.contains("allow-remote=on"), "{e}");
        h.listen(&ListenSpec::tcp("127.0.0.1", 0, false))
            .expect("loopback is fine");
    }

    #[test]
    fn test_unix_socket_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("bb-qmp-mode-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("q.sock");
        let (tx, _rx) = channel();
        let h = ServerHandle::new(QmpContext::new(BootOptions::default(), false), tx);
        h.listen(&ListenSpec::unix(&path)).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A second server on the same path replaces the stale socket.
        h.listen(&ListenSpec::unix(&path)).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
