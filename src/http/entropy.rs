//! The first random numbers of the process, drawn on a thread of their own.
//!
//! TLS is the only user of randomness (client random and key shares, all through ring). ring
//! asks the kernel with the `getrandom` system call; a kernel without it (Linux before 3.17,
//! e.g. the CentOS 6 base of STARFACE 6.x) makes ring fall back to `/dev/urandom`, but only after
//! waiting until `/dev/random` is readable. On an appliance short of entropy that wait can last
//! minutes, and inside a request it would hold the calling thread, the request's time-out and
//! the daemon's stop alike. So the first draw happens here, started when the first HTTP client
//! is built; a TLS connection waits for it in short slices that honour its deadline and the
//! stop cut-off, and the log says once why it waits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a connection waits quietly before the log explains the wait.
const QUIET_WAIT: Duration = Duration::from_secs(1);

/// Where the first draw stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pool {
    Waiting,
    /// The draw returned; ring draws without waiting from now on (also after an error, which
    /// the TLS handshake then reports itself).
    Drawn,
}

struct FirstDraw {
    pool: Mutex<Pool>,
    changed: Condvar,
    started: Instant,
}

static FIRST_DRAW: OnceLock<FirstDraw> = OnceLock::new();
static EXPLAINED: AtomicBool = AtomicBool::new(false);

/// Starts the first draw unless it has started already; returns at once.
pub fn warm_up() {
    first_draw();
}

fn first_draw() -> &'static FirstDraw {
    let mut new = false;
    let draw = FIRST_DRAW.get_or_init(|| {
        new = true;
        FirstDraw {
            pool: Mutex::new(Pool::Waiting),
            changed: Condvar::new(),
            started: Instant::now(),
        }
    });
    if new {
        let spawned = std::thread::Builder::new()
            .name("entropy".into())
            .spawn(move || {
                use ring::rand::SecureRandom as _;
                let mut byte = [0u8; 1];
                let ok = ring::rand::SystemRandom::new().fill(&mut byte).is_ok();
                finish(draw, ok);
            });
        if let Err(e) = spawned {
            // Without a thread of its own the draw happens in the first TLS connection, which
            // is how it would be without this module.
            log::warn!("cannot start the thread for the first random numbers ({e}); TLS connections draw them themselves");
            finish(draw, true);
        }
    }
    draw
}

fn finish(draw: &FirstDraw, ok: bool) {
    *lock(draw) = Pool::Drawn;
    draw.changed.notify_all();
    if EXPLAINED.load(Ordering::Relaxed) {
        log::info!(
            "the kernel's random number generator is ready after {} s; TLS connections go ahead",
            draw.started.elapsed().as_secs()
        );
    }
    if !ok {
        log::warn!("the kernel gave no random numbers; TLS connections will fail");
    }
}

fn lock(draw: &FirstDraw) -> std::sync::MutexGuard<'_, Pool> {
    draw.pool.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits until the first draw has returned, in slices of at most `slice`, each time asking
/// `end()` when to give up (it moves when the daemon is told to stop). On giving up returns
/// how long the draw has been waiting.
pub fn wait_ready(slice: Duration, end: impl Fn() -> Instant) -> Result<(), Duration> {
    let draw = first_draw();
    let mut pool = lock(draw);
    while *pool == Pool::Waiting {
        let now = Instant::now();
        let until = end();
        if now >= until {
            return Err(draw.started.elapsed());
        }
        if draw.started.elapsed() >= QUIET_WAIT && !EXPLAINED.swap(true, Ordering::Relaxed) {
            log::warn!(
                "waiting for the kernel's random number generator: this kernel has no getrandom system call (Linux before 3.17) and /dev/random is not readable yet (too little entropy); TLS connections wait until it is. An entropy daemon (haveged or rng-tools) fills it."
            );
        }
        pool = draw
            .changed
            .wait_timeout(pool, slice.min(until - now))
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On the kernels that run the tests the first draw returns, so a wait with time left
    /// ends in `Ok`, also when asked again after it is done (tests/platforms.sh covers a
    /// kernel where it does not return).
    fn check(slice: Duration, time_left: Duration) {
        let end = Instant::now() + time_left;
        assert_eq!(wait_ready(slice, || end), Ok(()), "slice {slice:?}");
        assert_eq!(*lock(first_draw()), Pool::Drawn);
    }

    #[test]
    fn waits_for_the_first_draw() {
        for slice in [Duration::from_millis(1), Duration::from_secs(1)] {
            check(slice, Duration::from_secs(60));
        }
    }
}
