//! `ess-sim starface`, `ess-sim ews` and `ess-sim graph`: one fake each, standing alone on a
//! loopback port with demo data, so that an admin can point the product at it and watch what it
//! does. Each prints the settings to copy into the product's configuration and then every
//! request worth seeing, until it is stopped with Ctrl-C.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ess_sim::ews::{EwsAuth, EwsFake, EWS_PATH};
use ess_sim::graph::{
    demo_calendars, GraphAuth, GraphFake, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT,
};
use ess_sim::server::Server;
use ess_sim::starface::{demo, DEFAULT_ADMIN_LOGIN, DEFAULT_ADMIN_PASSWORD, DEFAULT_RPC_METHOD};
#[cfg(test)]
use ess_sim::starface::{DEMO_OUTSIDER, DEMO_PEOPLE};
use ess_sim::token::TokenFake;

use crate::product::{EWS_PASSWORD, EWS_USER};

const CALENDARS: &str = "\
demo calendars (times relative to the start of the current hour, UTC):
  alice@example.com  Busy  \"Weekly sync\"            now .. +1 h
                     Busy  \"Focus time (No DND)\"    +2 h .. +3 h
  bob@example.com    OOF   \"Vacation\"               yesterday .. in two days (all day)
  carol@example.com  Tentative, private \"Doctor\"   now .. +2 h
  dora@example.com   an empty mailbox
  --users N adds user0@example.com .. user{N-1}@example.com with ten half-hour Busy
  appointments \"Meeting k (DND)\" each, for load tests.";

const STARFACE_USAGE: &str = "\
usage: ess-sim starface [--port N]

Serves a simulated STARFACE (REST under /rest, XML-RPC under /xml-rpc) on 127.0.0.1 with demo
data and prints every write (DND, redirects) and every chat-presence call as it arrives.

options:
  --port N   listen on port N (default: any free port; the banner names it)
  -h, --help this text

login (in [starface]):
  login = \"0001\", password = \"admin-secret\", login_type = \"internal\"
  rpc_method = \"ExchangeStatusSync.setChatPresence\" (the chat entry point the fake accepts)

demo users (id, login, e-mail, internal and external number, ALWAYS redirects):
  1  1001  alice@example.com  21  4972112345601  ext-1 -> 01715550101, int-1 -> voicemail vm1
  2  1002  bob@example.com    22  4972112345602  ext-2 -> 01715550102, int-2 -> voicemail vm2
  3  1003  carol@example.com  23  4972112345603  ext-3 -> 01715550103, int-3 -> voicemail vm3
  4  1004  dora@example.com   (no numbers)
groups: Exchange-Sync (alice, bob, carol), Sales (dora).
All redirects start switched off; DND starts off.";

const EWS_USAGE: &str = "\
usage: ess-sim ews [--port N] [--users N]

Serves a simulated Exchange Web Services endpoint (/EWS/Exchange.asmx: GetUserAvailability and
FindItem CalendarView, Basic authentication) on 127.0.0.1 with demo calendars, prints the
[exchange] settings to use and a line per request.

options:
  --port N    listen on port N (default: any free port)
  --users N   add N generated mailboxes (see below)
  -h, --help  this text

login (in [exchange]):
  auth = \"basic\", username = \"svc-starface@example.com\", password = \"exchange-secret\"
  lookup = \"availability\" or \"calendar\" both work; impersonation is accepted.
";

const GRAPH_USAGE: &str = "\
usage: ess-sim graph [--port N] [--users N]

Serves a simulated Microsoft Graph (/v1.0: calendarView and $batch) and its OAuth token endpoint
(/{tenant_id}/oauth2/v2.0/token, client-credentials grant) on 127.0.0.1 with demo calendars,
prints the [exchange] settings to use and a line whenever tokens or batches were requested.

options:
  --port N    listen on port N (default: any free port)
  --users N   add N generated mailboxes (see below)
  -h, --help  this text

login (in [exchange]):
  tenant_id = \"contoso.onmicrosoft.com\"
  client_id = \"11111111-2222-3333-4444-555555555555\", client_secret = \"demo-client-secret\"
";

/// The options every fake takes; `users` only for the Exchange fakes.
#[derive(Debug, PartialEq)]
struct Options {
    port: u16,
    users: usize,
}

/// `Ok(None)` asks for the help text.
fn parse(args: &[String], takes_users: bool) -> Result<Option<Options>, String> {
    let mut opts = Options { port: 0, users: 0 };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => opts.port = number(flag, it.next())?,
            "--users" if takes_users => opts.users = number(flag, it.next())?,
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    Ok(Some(opts))
}

fn number<T: std::str::FromStr>(flag: &str, value: Option<&String>) -> Result<T, String> {
    value
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{flag} takes a number"))
}

/// Parses, prints the help or the error, and hands the options on; the exit code of the command.
fn with_options(
    command: &str,
    usage: &str,
    args: &[String],
    takes_users: bool,
    serve: impl FnOnce(Options) -> Result<(), String>,
) -> i32 {
    let help = if takes_users {
        format!("{usage}\n{CALENDARS}")
    } else {
        usage.to_string()
    };
    match parse(args, takes_users) {
        Ok(None) => {
            println!("{help}");
            0
        }
        Err(e) => {
            eprintln!("ess-sim {command}: {e}\n\n{help}");
            2
        }
        Ok(Some(opts)) => match serve(opts) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("ess-sim {command}: {e}");
                1
            }
        },
    }
}

fn listening(what: &str, port: u16, r: std::io::Result<Server>) -> Result<Server, String> {
    r.map_err(|e| format!("cannot serve the {what} on port {port}: {e}"))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `ess-sim starface`: serves `starface::demo()` and prints every PBX write and chat call.
pub fn starface(args: &[String]) -> i32 {
    with_options("starface", STARFACE_USAGE, args, false, |opts| {
        let sim = demo();
        let server = listening("STARFACE fake", opts.port, sim.start_on(opts.port))?;
        println!(
            "STARFACE fake at {url}\n[starface]\nurl = \"{url}\"\nlogin = \"{DEFAULT_ADMIN_LOGIN}\"\npassword = \"{DEFAULT_ADMIN_PASSWORD}\"\nlogin_type = \"internal\"\ngroup = \"Exchange-Sync\"\n\n[chat]\nrpc_method = \"{DEFAULT_RPC_METHOD}\"",
            url = server.url()
        );
        let (mut writes, mut chats) = (0, 0);
        loop {
            std::thread::sleep(Duration::from_millis(200));
            for w in sim.writes().iter().skip(writes) {
                println!("{} {}?{} {}", w.method, w.path, w.query, w.body);
                writes += 1;
            }
            for c in sim.chat_calls().iter().skip(chats) {
                let text = if c.change_text {
                    format!("{:?}", c.text)
                } else {
                    "unchanged".to_string()
                };
                println!(
                    "chat user {}: presence {:?}, text {text}",
                    c.account_id, c.presence
                );
                chats += 1;
            }
        }
    })
}

/// `ess-sim ews`: serves the EWS fake with `demo_calendars` and Basic authentication.
pub fn ews(args: &[String]) -> i32 {
    with_options("ews", EWS_USAGE, args, true, |opts| {
        let fake = EwsFake::new(
            demo_calendars(now_secs(), opts.users),
            EwsAuth::basic(EWS_USER, EWS_PASSWORD),
        );
        let handler = fake.clone();
        let server = listening(
            "EWS fake",
            opts.port,
            Server::start_on(&format!("127.0.0.1:{}", opts.port), move |req| {
                handler.handle(req)
            }),
        )?;
        println!(
            "EWS fake at {url}{EWS_PATH}\n[exchange]\nbackend = \"ews\"\nurl = \"{url}{EWS_PATH}\"\nauth = \"basic\"\nusername = \"{EWS_USER}\"\npassword = \"{EWS_PASSWORD}\"\nlookup = \"availability\"",
            url = server.url()
        );
        let mut seen = 0;
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let requests = fake.requests();
            for r in requests.iter().skip(seen) {
                println!("{}", ews_line(&r.operation, r.mailboxes.len()));
            }
            seen = requests.len();
        }
    })
}

/// One line per EWS request: the operation (empty when the fake did not recognise one, e.g.
/// a request it turned away) and how many mailboxes it asked for.
fn ews_line(operation: &str, mailboxes: usize) -> String {
    match (operation, mailboxes) {
        ("", _) => "EWS request without a known operation".to_string(),
        (op, 0) => format!("EWS {op}"),
        (op, n) => format!("EWS {op} for {n} mailbox(es)"),
    }
}

/// `ess-sim graph`: serves the token endpoint and Graph with `demo_calendars`.
pub fn graph(args: &[String]) -> i32 {
    with_options("graph", GRAPH_USAGE, args, true, |opts| {
        let token = TokenFake::new(DEMO_TENANT, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
        let graph = GraphFake::new(
            demo_calendars(now_secs(), opts.users),
            GraphAuth::Tokens(token.clone()),
        );
        let server = listening("Graph fake", opts.port, graph.start_on(opts.port))?;
        println!(
            "Graph fake at {url}/v1.0\n[exchange]\nbackend = \"graph\"\ntenant_id = \"{DEMO_TENANT}\"\nclient_id = \"{DEMO_CLIENT_ID}\"\nclient_secret = \"{DEMO_CLIENT_SECRET}\"\ntoken_url = \"{url}/{{tenant_id}}/oauth2/v2.0/token\"\ngraph_url = \"{url}/v1.0\"",
            url = server.url()
        );
        let (mut seen_batches, mut seen_tokens) = (0, 0);
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let (batches, tokens) = (graph.batch_count(), token.request_count());
            if (batches, tokens) != (seen_batches, seen_tokens) {
                println!("{tokens} token request(s), {batches} batch request(s)");
                (seen_batches, seen_tokens) = (batches, tokens);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn check(a: &[&str], takes_users: bool, want: Result<Option<(u16, usize)>, &str>) {
        let got = parse(&args(a), takes_users);
        let want = want
            .map(|o| o.map(|(port, users)| Options { port, users }))
            .map_err(str::to_string);
        assert_eq!(got, want, "{a:?}");
    }

    #[test]
    fn options() {
        check(&[], false, Ok(Some((0, 0))));
        check(&["--port", "8081"], false, Ok(Some((8081, 0))));
        check(&["--port", "1", "--users", "5"], true, Ok(Some((1, 5))));
        check(&["--help"], true, Ok(None));
        check(&["--port", "1", "-h"], false, Ok(None));
        check(&["--port"], false, Err("--port takes a number"));
        check(&["--port", "x"], false, Err("--port takes a number"));
        check(&["--port", "70000"], false, Err("--port takes a number"));
        check(&["--users", "many"], true, Err("--users takes a number"));
        check(&["--users", "3"], false, Err("unknown option '--users'"));
        check(&["--verbose"], true, Err("unknown option '--verbose'"));
    }

    #[test]
    fn bad_options_exit_2_and_help_exits_0() {
        assert_eq!(starface(&args(&["--port"])), 2);
        assert_eq!(ews(&args(&["--users", "many"])), 2);
        assert_eq!(graph(&args(&["--verbose", "1"])), 2);
        assert_eq!(ews(&args(&["--help"])), 0);
    }

    #[test]
    fn the_help_names_what_the_fakes_accept() {
        // The help texts are written out by hand for readability; these tie them to the values
        // the fakes really accept, so that they cannot drift apart.
        for (text, values) in [
            (
                STARFACE_USAGE,
                vec![
                    DEFAULT_ADMIN_LOGIN,
                    DEFAULT_ADMIN_PASSWORD,
                    DEFAULT_RPC_METHOD,
                ],
            ),
            (EWS_USAGE, vec![EWS_USER, EWS_PASSWORD]),
            (
                GRAPH_USAGE,
                vec![DEMO_TENANT, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET],
            ),
        ] {
            for v in values {
                assert!(text.contains(&format!("\"{v}\"")), "{v} missing");
            }
        }
        for (id, login, email, _, _) in DEMO_PEOPLE.into_iter().chain([DEMO_OUTSIDER]) {
            let row = format!("{id}  {login}  {email}");
            assert!(STARFACE_USAGE.contains(&row), "{row}");
        }
        let cal = demo_calendars(now_secs(), 0);
        for email in cal.mailboxes() {
            assert!(CALENDARS.contains(&email), "{email}");
        }
    }

    #[test]
    fn ews_lines() {
        assert_eq!(
            ews_line("GetUserAvailability", 2),
            "EWS GetUserAvailability for 2 mailbox(es)"
        );
        assert_eq!(ews_line("FindItem", 0), "EWS FindItem");
        assert_eq!(ews_line("", 1), "EWS request without a known operation");
    }
}
