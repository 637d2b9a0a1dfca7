//! The real binary keeps one connection per server: across the requests of a `once`, and
//! across the polls of the daemon.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn once_opens_one_connection_per_server() {
    for backend in [Backend::Ews, Backend::EwsCalendar, Backend::Graph] {
        let mut w = World::new(backend);
        let out = w.once("2026-12-01T09:30:00Z", &[]);
        out.expect_code(0);
        assert!(w.exchange_requests() > 0, "{out}");
        assert_eq!(w.connects(), (1, 1), "{backend:?}:\n{out}");
    }
}

#[test]
fn the_daemon_reuses_its_connections_across_polls() {
    let mut w = World::new(Backend::Ews);
    w.set("sync.poll_interval_secs", "1");
    let d = w.start_daemon();
    assert!(
        d.wait_for(Duration::from_secs(20), || w.exchange_requests() >= 4),
        "fewer than 4 polls:\n{}",
        d.stderr()
    );
    assert_eq!(w.connects(), (1, 1), "{}", d.stderr());
    d.signal("TERM");
    let mut d = d;
    let out = d
        .wait_exit(Duration::from_secs(5))
        .expect("exit after SIGTERM");
    assert_eq!(out.code, 0, "{out}");
}
