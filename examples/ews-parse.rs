//! Measures the EWS response parser: time and peak heap for a GetUserAvailability response of
//! 100 mailboxes with 20 appointments each (the largest response one request can bring).
//!
//! `cargo run --release --example ews-parse` prints the figures; nothing is asserted, because
//! timings depend on the machine.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ess::exchange::ews::response::{parse, Operation, Parsed};
use ess_sim::calendar::{parse_utc, Calendars, SimAppointment, SimShowAs};
use ess_sim::ews::{availability_response, RenderOptions};

/// Counts live heap bytes and their peak, so the parser's own footprint can be told apart from
/// the input text's.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    let calendars = Calendars::new();
    let day = parse_utc("2026-12-01T00:00:00").unwrap_or(0);
    let mailboxes: Vec<String> = (0..100)
        .map(|i| format!("user{i:03}@example.com"))
        .collect();
    let kinds = [
        SimShowAs::Busy,
        SimShowAs::Tentative,
        SimShowAs::Oof,
        SimShowAs::Free,
    ];
    for m in &mailboxes {
        for j in 0..20i64 {
            let start = day + j * 3600;
            let kind = kinds[(j % 4) as usize];
            calendars.add(
                m,
                SimAppointment::new(
                    start,
                    start + 1800,
                    kind,
                    &format!("Meeting {j} & review (DND)"),
                ),
            );
        }
    }
    let text = availability_response(
        &calendars,
        &mailboxes,
        day,
        day + 86_400,
        &RenderOptions::default(),
    );

    let runs = 50;
    let mut appointments = 0;
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let started = Instant::now();
    for _ in 0..runs {
        match parse(&text, Operation::GetUserAvailability) {
            Ok(Parsed::Mailboxes(m)) => {
                appointments = m.iter().map(|r| r.as_ref().map_or(0, Vec::len)).sum();
            }
            other => {
                eprintln!("unexpected parse result: {other:?}");
                std::process::exit(1);
            }
        }
    }
    let per_parse = started.elapsed() / runs;
    let peak = PEAK.load(Ordering::Relaxed) - base;
    // The tokenizer and namespace resolution alone, to tell their share from the parser's.
    let started = Instant::now();
    for _ in 0..runs {
        let mut reader = ess::xml::Reader::new(&text);
        while let Ok(Some(_)) = reader.next() {}
    }
    let reader_only = started.elapsed() / runs;
    println!(
        "response: {} bytes, 100 mailboxes, {appointments} appointments",
        text.len()
    );
    println!(
        "parse: {:.3} ms per response (mean of {runs})",
        per_parse.as_secs_f64() * 1000.0
    );
    println!(
        "  of which the XML reader alone: {:.3} ms",
        reader_only.as_secs_f64() * 1000.0
    );
    println!(
        "peak heap during parse (beyond the response text): {:.1} KiB",
        peak as f64 / 1024.0
    );
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM")) {
            println!(
                "process peak RSS (incl. building the response): {}",
                line.trim_start_matches("VmHWM:").trim()
            );
        }
    }
}
