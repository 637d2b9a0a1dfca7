//! Connections: the TCP or TLS stream with its read buffer, the socket time-outs that keep a
//! request within its deadline (and the daemon's stop), and the pool that keeps at most one
//! idle connection per server.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::wire::ReadBuf;
use super::Cutoff;

/// How long an idle connection is kept. Below the 60 s the contract allows, so that the
/// reaper's own slack cannot push it past; servers (IIS: 120 s) keep theirs longer.
pub const IDLE_MAX: Duration = Duration::from_secs(50);

/// How long one socket wait lasts at most, so that a cutoff set meanwhile is noticed.
pub const WAIT_SLICE: Duration = Duration::from_millis(200);

/// The byte stream of a connection.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Which server a connection talks to: scheme, host (lower case) and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub https: bool,
    pub host: String,
    pub port: u16,
}

/// One connection to one server.
pub struct Conn {
    pub stream: Stream,
    pub rb: ReadBuf,
    /// Distinguishes connections, so that a caller can tell that two answers came over one.
    pub id: u64,
    pub idle_since: Instant,
    /// The caller authenticated this connection (NTLM): its requests carry no `Authorization`.
    pub authenticated: bool,
    pub timeouts: Timeouts,
}

/// The socket time-outs last set on a connection (`None`: not known, e.g. after the TLS
/// handshake set its own). Setting them before every read and write was seven `setsockopt`
/// calls per request, 4,474 in an idle poll of 2,000 users (strace); most set the value that
/// was there already.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timeouts {
    read: Option<Duration>,
    write: Option<Duration>,
}

/// A write time-out set earlier is kept while it is within this much of what is left of the
/// deadline, so that the write and the flush of one request set it once; a write may thus end
/// up to this much after its deadline.
const WRITE_SLACK: Duration = Duration::from_millis(50);

impl Conn {
    pub fn new(stream: Stream) -> Conn {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Conn {
            stream,
            rb: ReadBuf::default(),
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            idle_since: Instant::now(),
            authenticated: false,
            timeouts: Timeouts::default(),
        }
    }

    /// False when the server has closed the idle connection (or sent plain-HTTP bytes nobody
    /// asked for). A TLS connection with bytes waiting is given the benefit of the doubt: they
    /// may be a session ticket; a close there is caught by the one retry of the request.
    pub fn looks_alive(&self) -> bool {
        let tcp = self.stream.tcp();
        if tcp.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8; 1];
        let peeked = tcp.peek(&mut byte);
        let restored = tcp.set_nonblocking(false).is_ok();
        restored
            && match peeked {
                Err(e) => e.kind() == io::ErrorKind::WouldBlock,
                Ok(0) => false,
                Ok(_) => matches!(self.stream, Stream::Tls(_)),
            }
    }

    /// Whether bytes of the server wait unread after a whole response (in our buffer, or as
    /// decrypted TLS data): it sent more than it announced, so the next answer on this
    /// connection could not be trusted.
    pub fn has_unread(&mut self) -> bool {
        self.rb.pending() > 0
            || match &mut self.stream {
                Stream::Plain(_) => false,
                Stream::Tls(s) => s
                    .conn
                    .process_new_packets()
                    .map_or(true, |io| io.plaintext_bytes_to_read() > 0),
            }
    }

    /// The DER bytes of the server's end-entity certificate (the one rustls verified); `None`
    /// over plain HTTP or before the handshake.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        match &self.stream {
            Stream::Plain(_) => None,
            Stream::Tls(s) => s
                .conn
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|c| c.as_ref().to_vec()),
        }
    }
}

/// Sets the socket's time-outs to what is left of the deadline (or of a cutoff set meanwhile)
/// before every read and write. Reads wait in slices so that a cutoff set during a long wait is
/// noticed; a slice that ends without data is retried while time is left (rustls and the
/// socket lose nothing when a read times out).
pub struct Timed<'a> {
    stream: &'a mut Stream,
    timeouts: &'a mut Timeouts,
    deadline: Instant,
    cutoff: &'a Cutoff,
}

impl<'a> Timed<'a> {
    /// The stream with the socket time-outs of a request that must end by `deadline` (or by
    /// the cutoff, if that comes first).
    pub fn new(
        stream: &'a mut Stream,
        timeouts: &'a mut Timeouts,
        deadline: Instant,
        cutoff: &'a Cutoff,
    ) -> Timed<'a> {
        Timed {
            stream,
            timeouts,
            deadline,
            cutoff,
        }
    }

    fn end(&self) -> Instant {
        self.cutoff
            .get()
            .map_or(self.deadline, |c| c.min(self.deadline))
    }

    /// Before a read (`slice`): both time-outs at what is left, at most one slice (a TLS read
    /// may write). Before a write: the write time-out at what is left.
    fn arm(&mut self, slice: bool) -> io::Result<()> {
        let left = self.end().saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        let tcp = self.stream.tcp();
        let set = &mut self.timeouts;
        if slice {
            let t = Some(left.min(WAIT_SLICE));
            if set.read != t {
                set.read = None;
                tcp.set_read_timeout(t)?;
                set.read = t;
            }
            if set.write != t {
                set.write = None;
                tcp.set_write_timeout(t)?;
                set.write = t;
            }
        } else if !set
            .write
            .is_some_and(|w| w <= left + WRITE_SLACK && w + WRITE_SLACK >= left)
        {
            set.write = None;
            tcp.set_write_timeout(Some(left))?;
            set.write = Some(left);
        }
        Ok(())
    }
}

impl Read for Timed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.arm(true)?;
            match self.stream.read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) && Instant::now() < self.end() =>
                {
                    continue
                }
                other => return other,
            }
        }
    }
}

impl Write for Timed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Writes are small and not retried (a TLS write may have taken part of the data).
        self.arm(false)?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.arm(false)?;
        self.stream.flush()
    }
}

/// At most one idle connection per server, shared by a client and its clones. A reaper thread
/// closes connections idle for `IDLE_MAX`; it runs only while the pool holds any.
#[derive(Default)]
pub struct Pool {
    state: Mutex<PoolState>,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<(Origin, Conn)>,
    reaper: bool,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The idle connection to `origin`, if one is kept and still fresh.
    pub fn take(&self, origin: &Origin) -> Option<Conn> {
        let mut state = self.lock();
        let i = state.idle.iter().position(|(o, _)| o == origin)?;
        let (_, conn) = state.idle.swap_remove(i);
        (conn.idle_since.elapsed() < IDLE_MAX).then_some(conn)
    }

    /// Keeps `conn` as the idle connection to `origin` (closing an older one).
    pub fn put(self: &Arc<Self>, origin: Origin, mut conn: Conn) {
        conn.idle_since = Instant::now();
        let mut state = self.lock();
        state.idle.retain(|(o, _)| *o != origin);
        state.idle.push((origin, conn));
        if !state.reaper {
            state.reaper = true;
            let weak = Arc::downgrade(self);
            let spawned = std::thread::Builder::new()
                .name("http-idle".into())
                .spawn(move || reap(&weak));
            // Without the thread, stale connections are still dropped by `take`.
            state.reaper = spawned.is_ok();
        }
    }

    /// Closes every idle connection.
    pub fn clear(&self) {
        self.lock().idle.clear();
    }
}

fn reap(pool: &Weak<Pool>) {
    let mut wait = IDLE_MAX;
    loop {
        std::thread::sleep(wait);
        let Some(pool) = pool.upgrade() else { return };
        let mut state = pool.lock();
        state
            .idle
            .retain(|(_, c)| c.idle_since.elapsed() < IDLE_MAX);
        let Some(oldest) = state.idle.iter().map(|(_, c)| c.idle_since).min() else {
            state.reaper = false;
            return;
        };
        wait = (oldest + IDLE_MAX)
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connected loopback pair: our side as a `Conn`, and the server's side.
    fn pair() -> (Conn, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (theirs, _) = listener.accept().unwrap();
        (Conn::new(Stream::Plain(ours)), theirs)
    }

    fn origin(port: u16) -> Origin {
        Origin {
            https: false,
            host: "127.0.0.1".into(),
            port,
        }
    }

    /// The socket's time-outs after arming `conn` for a read (`slice`) or a write with
    /// `left` to go.
    fn armed(conn: &mut Conn, slice: bool, left: Duration) -> (Option<Duration>, Option<Duration>) {
        let cutoff = Cutoff::default();
        let Conn {
            stream, timeouts, ..
        } = conn;
        let mut timed = Timed::new(stream, timeouts, Instant::now() + left, &cutoff);
        timed.arm(slice).unwrap();
        let tcp = timed.stream.tcp();
        (tcp.read_timeout().unwrap(), tcp.write_timeout().unwrap())
    }

    #[test]
    fn time_outs_are_set_only_when_they_change() {
        let (mut conn, _keep) = pair();
        let long = Duration::from_secs(30);
        // Before a read: both at one slice, since much more is left.
        assert_eq!(
            armed(&mut conn, true, long),
            (Some(WAIT_SLICE), Some(WAIT_SLICE))
        );
        // A value set behind the cache's back stays: the cache says nothing changed.
        let tcp = conn.stream.tcp();
        tcp.set_read_timeout(Some(Duration::from_secs(7))).unwrap();
        assert_eq!(armed(&mut conn, true, long).0, Some(Duration::from_secs(7)));
        // Near the deadline the slice shrinks, so it is set again.
        let (read, write) = armed(&mut conn, true, Duration::from_millis(100));
        assert!(read.unwrap() <= Duration::from_millis(100), "{read:?}");
        assert_eq!(read, write);
        // Before a write: what is left, kept for a write shortly after.
        let (_, w1) = armed(&mut conn, false, long);
        assert!(w1.unwrap() > Duration::from_secs(29), "{w1:?}");
        let (_, w2) = armed(&mut conn, false, long - Duration::from_millis(10));
        assert_eq!(w1, w2);
        // Much less left than the time-out set: set again, never longer than what is left.
        let (_, w3) = armed(&mut conn, false, Duration::from_secs(1));
        assert!(w3.unwrap() <= Duration::from_secs(1), "{w3:?}");
    }

    #[test]
    fn pool_keeps_one_fresh_connection_per_server() {
        let pool = Arc::new(Pool::default());
        let (a, _keep_a) = pair();
        let (b, _keep_b) = pair();
        let (a_id, b_id) = (a.id, b.id);
        pool.put(origin(1), a);
        pool.put(origin(1), b);
        // The newer replaced the older: one per server.
        assert_eq!(pool.take(&origin(1)).map(|c| c.id), Some(b_id));
        assert!(pool.take(&origin(1)).is_none());
        assert_ne!(a_id, b_id);
        let (c, _keep_c) = pair();
        pool.put(origin(2), c);
        assert!(pool.take(&origin(1)).is_none());
        assert!(pool.take(&origin(2)).is_some());
    }

    #[test]
    fn a_connection_idle_too_long_is_not_handed_out() {
        let pool = Arc::new(Pool::default());
        let (conn, _keep) = pair();
        pool.put(origin(1), conn);
        if let Some((_, c)) = pool.lock().idle.first_mut() {
            c.idle_since = Instant::now() - IDLE_MAX;
        }
        assert!(pool.take(&origin(1)).is_none());
    }

    #[test]
    fn a_connection_closed_by_the_server_does_not_look_alive() {
        let (conn, theirs) = pair();
        assert!(conn.looks_alive());
        drop(theirs);
        // The FIN may take a moment to arrive on loopback; wait for it, not for a time.
        let mut alive = true;
        for _ in 0..5000 {
            alive = conn.looks_alive();
            if !alive {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!alive);
        let (conn, mut theirs) = pair();
        theirs.write_all(b"unasked").unwrap();
        let mut alive = true;
        for _ in 0..5000 {
            alive = conn.looks_alive();
            if !alive {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            !alive,
            "bytes nobody asked for make a plain connection unusable"
        );
    }
}
