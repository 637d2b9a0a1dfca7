//! Measures the EWS response parser against xmlparser's own tokenising on the same bytes, and
//! counts the parser's heap allocations.
//!
//! `cargo run --release --example ews-parse [FILE]` parses FILE (a GetUserAvailability response,
//! as `ess-sim bench` saves one from its EWS fake), or else a generated response of 100
//! mailboxes with 10 appointments each (the largest response one request can bring at the
//! bench's density). It prints one `key value` line per figure; nothing is asserted, because
//! timings depend on the machine. `ess-sim bench` runs the musl build of this example
//! (`cargo build --release --target x86_64-unknown-linux-musl --example ews-parse`) so that the
//! figures are those of the binary that ships. `ews-parse [FILE] --profile N` only parses N
//! times, for a profiler (`perf record`) to see the product's parse alone.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ess::exchange::ews::response::{parse, Operation, Parsed};
use ess_sim::calendar::{parse_utc, Calendars, SimAppointment, SimShowAs};
use ess_sim::ews::{availability_response, RenderOptions};

mod measure;

use measure::{fastest, ALLOCS, LIVE, PEAK};

#[global_allocator]
static ALLOC: measure::Counting = measure::Counting;

/// A response like the bench's: 100 mailboxes, 10 appointments each over sixteen hours.
fn generated() -> String {
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
        for j in 0..10i64 {
            let start = day + j * 5760;
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
    availability_response(
        &calendars,
        &mailboxes,
        day,
        day + 86_400,
        &RenderOptions::default(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let profile = args
        .iter()
        .position(|a| a == "--profile")
        .map(|i| args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(1000));
    let file = args.first().filter(|a| !a.starts_with("--"));
    let text = match file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("cannot read {path}: {e}");
                std::process::exit(2);
            }
        },
        None => generated(),
    };
    let mb = text.len() as f64 / 1e6;
    if let Some(runs) = profile {
        let mut ok = 0;
        for _ in 0..runs {
            ok += usize::from(parse(&text, Operation::GetUserAvailability).is_ok());
        }
        println!("parsed {ok} of {runs}");
        return;
    }

    let mut appointments = 0;
    let mut mailboxes = 0;
    let parse_once = |appointments: &mut usize, mailboxes: &mut usize| match parse(
        &text,
        Operation::GetUserAvailability,
    ) {
        Ok(Parsed::Mailboxes(m)) => {
            *mailboxes = m.len();
            *appointments = m.iter().map(|r| r.as_ref().map_or(0, Vec::len)).sum();
        }
        other => {
            eprintln!("unexpected parse result: {other:?}");
            std::process::exit(1);
        }
    };
    // One parse alone for the allocation count and the peak heap.
    let allocs_before = ALLOCS.load(Ordering::Relaxed);
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    parse_once(&mut appointments, &mut mailboxes);
    let allocs = ALLOCS.load(Ordering::Relaxed) - allocs_before;
    let peak = PEAK.load(Ordering::Relaxed) - base;

    let mut tokens = 0usize;
    let mut product_run = || parse_once(&mut appointments, &mut mailboxes);
    let mut reader_run = || {
        let mut reader = ess::xml::Reader::new(&text);
        while let Ok(Some(_)) = reader.next() {}
    };
    let mut tokenizer_run = || {
        tokens = 0;
        for t in xmlparser::Tokenizer::from(text.as_str()) {
            if t.is_err() {
                break;
            }
            tokens += 1;
        }
    };
    // Taken in turns, so that a burst of load from other processes slows all three alike.
    let (mut product, mut reader, mut tokenizer) = (Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..8 {
        product = product.min(fastest(&mut product_run));
        reader = reader.min(fastest(&mut reader_run));
        tokenizer = tokenizer.min(fastest(&mut tokenizer_run));
    }
    let rate = |d: Duration| mb / d.as_secs_f64().max(1e-9);
    println!("bytes {}", text.len());
    println!("mailboxes {mailboxes}");
    println!("appointments {appointments}");
    println!("tokens {tokens}");
    println!("parse_ms {:.3}", product.as_secs_f64() * 1000.0);
    println!("parse_mb_s {:.0}", rate(product));
    println!("reader_mb_s {:.0}", rate(reader));
    println!("tokens_mb_s {:.0}", rate(tokenizer));
    println!(
        "parse_vs_tokens {:.2}",
        product.as_secs_f64() / tokenizer.as_secs_f64().max(1e-9)
    );
    println!("allocations {allocs}");
    println!("peak_heap_kib {:.1}", peak as f64 / 1024.0);
}
