//! Hostile input for every parser, at growing sizes: the time per MB must stay flat, or a parser
//! does more than linear work somewhere (a duplicate check against all earlier names, a scan of
//! all namespace bindings per element, a search of all earlier members per member).
//!
//! `cargo run --release --example adversarial` measures 1, 2 and 4 MB; other sizes in KiB can
//! be given as arguments (`… -- 256 512`), and `--only NAME` picks one input. Nothing is
//! asserted, because timings depend on the machine; the figures go into the README.

use std::time::{Duration, Instant};

use ess::config::toml;
use ess::exchange::ews::response::{parse as parse_ews, Operation};
use ess::exchange::graph::response::{parse_batch, Body};
use ess::json;
use ess::starface::numbers::NumberIndex;
use ess::starface::objects::{group_members, read_directory};
use ess::xml::Reader;

/// One hostile input: a name and a builder of roughly `size` bytes of text, and the parse.
struct Case {
    name: &'static str,
    build: fn(usize) -> Input,
    run: fn(&Input) -> bool,
}

struct Input {
    text: String,
}

fn text(text: String) -> Input {
    Input { text }
}

/// Appends `item(i)` for i = 0, 1, … until `out` holds about `size` bytes.
fn fill(out: &mut String, size: usize, item: impl Fn(usize) -> String) {
    let mut i = 0;
    while out.len() < size {
        out.push_str(&item(i));
        i += 1;
    }
}

/// One object with distinct member names (the duplicate-name check).
fn json_keys(size: usize) -> Input {
    let mut s = String::from("{");
    fill(&mut s, size, |i| format!("\"k{i}\":0,"));
    s.push_str("\"end\":0}");
    text(s)
}

/// Many namespace declarations on the root, then as many elements (namespace resolution).
fn xml_namespaces(size: usize) -> Input {
    let mut s = String::from("<r");
    fill(&mut s, size / 2, |i| format!(" xmlns:p{i}=\"urn:x\""));
    s.push('>');
    fill(&mut s, size, |_| "<a b=\"c\"/>".to_string());
    s.push_str("</r>");
    text(s)
}

/// A SOAP envelope whose root declares many prefixes, then a long run of elements the parser
/// does not know (skipped, but their names are still resolved).
fn ews_namespaces(size: usize) -> Input {
    let mut s = String::from("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"");
    fill(&mut s, size / 2, |i| format!(" xmlns:p{i}=\"urn:x\""));
    s.push_str(
        "><s:Body><m:GetUserAvailabilityResponse \
         xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\">\
         <m:FreeBusyResponseArray>",
    );
    fill(&mut s, size, |_| "<x y=\"z\"/>".to_string());
    s.push_str("</m:FreeBusyResponseArray></m:GetUserAvailabilityResponse></s:Body></s:Envelope>");
    text(s)
}

/// A `$batch` answer whose one inner body is an object with very many members.
fn graph_batch(size: usize) -> Input {
    let mut s =
        String::from("{\"responses\":[{\"id\":\"1\",\"status\":200,\"body\":{\"value\":[],");
    fill(&mut s, size, |i| format!("\"x{i}\":\"\","));
    s.push_str("\"end\":0}}]}");
    text(s)
}

/// A group with very many assigned members, none of them in the (empty) user list: the
/// directory join checks every member for repeats and warns about each.
fn starface_group(size: usize) -> Input {
    let mut s = String::from("{\"id\":1,\"assignableUsers\":[");
    fill(&mut s, size, |i| {
        format!("{{\"id\":{i},\"assigned\":true}},")
    });
    s.pop();
    s.push_str("]}");
    text(s)
}

/// The phone number list.
fn starface_numbers(size: usize) -> Input {
    let mut s = String::from("[");
    fill(&mut s, size, |i| {
        format!(
            "{{\"number\":\"+49 30 {i}\",\"type\":\"EXTERNAL\",\"assignedUserAccountId\":{i}}},"
        )
    });
    s.pop();
    s.push(']');
    text(s)
}

/// Many keys before the first table, then many tables (each header is checked against the
/// root's keys).
fn config_toml(size: usize) -> Input {
    let mut s = String::new();
    fill(&mut s, size / 2, |i| format!("k{i} = 1\n"));
    fill(&mut s, size, |i| format!("[t{i}]\n"));
    text(s)
}

const CASES: &[Case] = &[
    Case {
        name: "json: one object, many names",
        build: json_keys,
        run: |i| json::parse(&i.text).is_ok(),
    },
    Case {
        name: "xml: many namespace declarations",
        build: xml_namespaces,
        run: |i| {
            let mut r = Reader::new(&i.text);
            loop {
                match r.next() {
                    Ok(Some(_)) => {}
                    Ok(None) => return true,
                    Err(_) => return false,
                }
            }
        },
    },
    Case {
        name: "ews: envelope with many namespaces",
        build: ews_namespaces,
        run: |i| parse_ews(&i.text, Operation::GetUserAvailability).is_ok(),
    },
    Case {
        name: "graph: $batch body with many names",
        build: graph_batch,
        run: |i| match parse_batch(&i.text) {
            Ok(inner) => inner.iter().all(|r| matches!(r.body, Body::Page(Ok(_)))),
            Err(_) => false,
        },
    },
    Case {
        name: "starface: one big group",
        build: starface_group,
        run: |i| match group_members(json::Parser::new(&i.text)) {
            Ok(members) => read_directory("G", &members, json::Parser::new("[]")).is_ok(),
            Err(_) => false,
        },
    },
    Case {
        name: "starface: phone number list",
        build: starface_numbers,
        run: |i| NumberIndex::read(json::Parser::new(&i.text)).is_ok(),
    },
    Case {
        name: "config: many root keys and tables",
        build: config_toml,
        run: |i| toml::parse(&i.text).is_ok(),
    },
];

fn main() {
    let mut args = std::env::args().skip(1);
    let mut sizes_kib = Vec::new();
    let mut only = None;
    while let Some(a) = args.next() {
        if a == "--only" {
            only = args.next();
        } else if let Ok(k) = a.parse::<usize>() {
            sizes_kib.push(k);
        }
    }
    if sizes_kib.is_empty() {
        sizes_kib = vec![1024, 2048, 4096];
    }
    println!(
        "{:<38} {:>8} {:>10} {:>10}  result",
        "input", "MB", "ms", "ms/MB"
    );
    for case in CASES {
        if only.as_deref().is_some_and(|o| !case.name.contains(o)) {
            continue;
        }
        for &kib in &sizes_kib {
            let input = (case.build)(kib * 1024);
            let mb = input.text.len() as f64 / (1024.0 * 1024.0);
            // The best of three runs, so that a stray pause of the machine does not show as
            // growth; a run of over a second (a quadratic parser) is not repeated.
            let mut best = Duration::MAX;
            let mut ok = false;
            for _ in 0..3 {
                let start = Instant::now();
                ok = (case.run)(&input);
                best = best.min(start.elapsed());
                if best > Duration::from_secs(1) {
                    break;
                }
            }
            let ms = best.as_secs_f64() * 1000.0;
            println!(
                "{:<38} {:>8.2} {:>10.1} {:>10.1}  {}",
                case.name,
                mb,
                ms,
                ms / mb,
                if ok { "ok" } else { "refused" }
            );
        }
    }
}
