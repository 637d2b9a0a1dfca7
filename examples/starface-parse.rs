//! Measures the STARFACE REST readers on bodies shaped like those of the simulator's fake for the
//! bench's PBX (`ess-sim bench`: N users, each with an internal and an external number and two
//! ALWAYS redirects), and counts the readers' heap allocations. The Graph `$batch` answer (20
//! calendarView pages of 10 events, as Graph writes them) is measured alongside, since its
//! reader shares the JSON parser.
//!
//! `cargo run --release --example starface-parse [USERS]` (2,000 by default) prints one line per
//! body: its size, the fastest parse, the throughput and the allocations of one parse. Nothing
//! is asserted, because timings depend on the machine. `starface-parse --profile BODY N` only
//! parses that body (`numbers`, `redirects`, `phoneconfig`, `users`, `group`, `groups`,
//! `graph-batch`) N times,
//! for callgrind to count the instructions of the readers alone.

use std::sync::atomic::Ordering;

use ess::exchange::graph::response::{parse_batch, Body};
use ess::json::Parser;
use ess::starface::numbers::NumberIndex;
use ess::starface::objects::{find_group, group_members, read_directory};
use ess::starface::{Forwarding, PhoneConfig};

mod measure;

use measure::{fastest, ALLOCS};

#[global_allocator]
static ALLOC: measure::Counting = measure::Counting;

/// The bodies the daemon reads in an idle poll, as the fake writes them (compact, members in
/// the fake's order).
struct Bodies {
    numbers: String,
    /// The redirects of user 1 (every user's list looks alike).
    redirects: String,
    phoneconfig: String,
    users: String,
    groups: String,
    group: String,
    members: Vec<i64>,
    batch: String,
}

/// A `$batch` answer of 20 calendarView pages with 10 events each, members as Graph orders them.
fn graph_batch() -> String {
    let responses: Vec<String> = (1..=20)
        .map(|r| {
            let events: Vec<String> = (0..10)
                .map(|e| {
                    format!(
                        r#"{{"@odata.etag":"W/\"DwAAABYAAAB{r}{e}\"","id":"AAMkADI5MAAIT3drCAAA{r}x{e}=","subject":"Meeting {e} & review (DND)","isAllDay":false,"sensitivity":"normal","showAs":"busy","start":{{"dateTime":"2026-12-01T{e:02}:00:00.0000000","timeZone":"UTC"}},"end":{{"dateTime":"2026-12-01T{e:02}:30:00.0000000","timeZone":"UTC"}}}}"#
                    )
                })
                .collect();
            format!(
                r#"{{"id":"{r}","status":200,"headers":{{"OData-Version":"4.0","Content-Type":"application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"}},"body":{{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users('user{r}%40bench.example.com')/calendarView(subject,start,end,showAs,isAllDay,sensitivity)","value":[{}]}}}}"#,
                events.join(",")
            )
        })
        .collect();
    format!(r#"{{"responses":[{}]}}"#, responses.join(","))
}

fn bodies(users: i64) -> Bodies {
    let mut numbers = Vec::new();
    for i in 1..=users {
        for (k, (number, kind)) in [
            (format!("{}", 100_000 + i), "INTERNAL"),
            (format!("4972155{i:06}"), "EXTERNAL"),
        ]
        .into_iter()
        .enumerate()
        {
            numbers.push(format!(
                r#"{{"assignedGroupAccountId":null,"assignedModuleInstanceId":null,"assignedServiceId":null,"assignedUserAccountId":{i},"exitCode":"00","id":{},"localPrefix":"721","nationalPrefix":"0","number":"{number}","numberBlockId":1,"type":"{kind}"}}"#,
                2 * i + k as i64
            ));
        }
    }
    let redirect = |id: &str, number: &str, dest: &str| {
        format!(
            r#"{{"enabled":false,"groupNumber":false,"id":"{id}","lastMailboxDestination":{{"mailboxId":"vm-last","redirectDestinationType":"MAILBOX"}},"lastPhoneNumberDestination":{{"phoneNumber":"0800123","redirectDestinationType":"PHONENUMBER"}},"phoneNumber":"{number}","redirectDestination":{dest},"redirectTrigger":{{"redirectTriggerType":"ALWAYS"}}}}"#
        )
    };
    let redirects = format!(
        "[{},{}]",
        redirect(
            "ext-1",
            "+4972155000001",
            r#"{"redirectDestinationType":"PHONENUMBER","phoneNumber":"01710000001"}"#
        ),
        redirect(
            "int-1",
            "100001",
            r#"{"redirectDestinationType":"MAILBOX","mailboxId":"vm1"}"#
        )
    );
    let phoneconfig =
        r#"{"callWaiting":true,"displayNumberId":10,"doNotDisturb":false,"primaryPhoneId":11}"#
            .to_string();
    let list = |items: Vec<String>| format!("[{}]", items.join(","));
    let user_list = (1..=users)
        .map(|i| {
            format!(
                r#"{{"id":{i},"login":"{}","email":"user{i}@bench.example.com","firstName":"Bench","familyName":"User{i}","language":"de","namespace":"local","personId":"p{i}","missedCallReport":false,"faxHeader":""}}"#,
                500_000 + i
            )
        })
        .collect();
    let assignable = (1..=users)
        .map(|i| {
            format!(r#"{{"assigned":true,"firstname":"Bench","id":{i},"lastname":"User{i}"}}"#)
        })
        .collect();
    let group = format!(
        r#"{{"assignableNumbers":[],"assignableUsers":{},"chatGroup":false,"groupId":"g10","id":10,"name":"Exchange-Sync","voicemail":false}}"#,
        list(assignable)
    );
    Bodies {
        numbers: list(numbers),
        redirects,
        phoneconfig,
        users: list(user_list),
        groups: r#"[{"id":10,"groupname":"Exchange-Sync","groupinternalnumber":"","groupexternalnumber":""}]"#.to_string(),
        group,
        members: (1..=users).collect(),
        batch: graph_batch(),
    }
}

/// One body and the reader the daemon uses for it; the reader returns how many things it found.
struct Case<'b> {
    name: &'static str,
    text: &'b str,
    read: Box<dyn Fn(&str) -> usize + 'b>,
}

fn cases<'b>(b: &'b Bodies, index: &'b NumberIndex) -> Vec<Case<'b>> {
    vec![
        Case {
            name: "numbers",
            text: &b.numbers,
            read: Box::new(|t| NumberIndex::read(Parser::new(t)).map_or(0, |n| n.len())),
        },
        Case {
            name: "redirects",
            text: &b.redirects,
            read: Box::new(move |t| {
                Forwarding::read_list(Parser::new(t), 1, index).map_or(0, |l| l.len())
            }),
        },
        Case {
            name: "phoneconfig",
            text: &b.phoneconfig,
            read: Box::new(|t| {
                PhoneConfig::read(Parser::new(t)).map_or(0, |p| usize::from(!p.dnd))
            }),
        },
        Case {
            name: "users",
            text: &b.users,
            read: Box::new(|t| {
                read_directory("G", &b.members, Parser::new(t)).map_or(0, |d| d.users.len())
            }),
        },
        Case {
            name: "group",
            text: &b.group,
            read: Box::new(|t| group_members(Parser::new(t)).map_or(0, |m| m.len())),
        },
        Case {
            name: "groups",
            text: &b.groups,
            read: Box::new(|t| find_group(Parser::new(t), "Exchange-Sync").map_or(0, |_| 1)),
        },
        Case {
            name: "graph-batch",
            text: &b.batch,
            read: Box::new(|t| {
                parse_batch(t).map_or(0, |list| {
                    list.iter()
                        .map(|r| match &r.body {
                            Body::Page(Ok(page)) => page.appointments.len(),
                            _ => 0,
                        })
                        .sum()
                })
            }),
        },
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let users = args.first().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let b = bodies(users);
    let index = NumberIndex::read(Parser::new(&b.numbers)).unwrap_or_default();
    let cases = cases(&b, &index);
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        let name = args.get(i + 1).map_or("numbers", String::as_str);
        let runs: usize = args.get(i + 2).and_then(|n| n.parse().ok()).unwrap_or(100);
        let Some(case) = cases.iter().find(|c| c.name == name) else {
            eprintln!("no body {name}");
            std::process::exit(2);
        };
        let found: usize = (0..runs).map(|_| (case.read)(case.text)).sum();
        println!("found {found} in {runs} runs");
        return;
    }
    println!(
        "{:<12} {:>10} {:>6} {:>10} {:>8} {:>8}",
        "body", "bytes", "found", "us", "MB/s", "allocs"
    );
    for case in &cases {
        let before = ALLOCS.load(Ordering::Relaxed);
        let found = (case.read)(case.text);
        let allocs = ALLOCS.load(Ordering::Relaxed) - before;
        let best = fastest(&mut || {
            std::hint::black_box((case.read)(case.text));
        });
        let mb = case.text.len() as f64 / 1e6;
        println!(
            "{:<12} {:>10} {:>6} {:>10.1} {:>8.0} {:>8}",
            case.name,
            case.text.len(),
            found,
            best.as_secs_f64() * 1e6,
            mb / best.as_secs_f64().max(1e-12),
            allocs
        );
    }
}
