//! Tests of validation: each case is a configuration text (the parts it does not mention are
//! filled in with a minimal valid [exchange] and [starface]) and the expected outcome.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A temporary directory holding the configuration file and any secret files of one case.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("ess-config-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        Dir(path)
    }

    fn write(&self, name: &str, contents: &[u8], mode: u32) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, contents).expect("write temp file");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    fn text(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const EXCHANGE: &str = "[exchange]
url = \"https://mail.example.com/EWS/Exchange.asmx\"
username = \"svc\"
password = \"ews-pw\"
";

const STARFACE: &str = "[starface]
login = \"0001\"
password = \"sf-pw\"
";

/// The environment the cases see.
fn env(name: &str) -> Option<String> {
    match name {
        "EWS_PW" => Some("env-pw\n".to_string()),
        "CLIENT_SECRET" => Some("env-client-secret".to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn secret(s: &Option<Secret>) -> String {
    match s {
        Some(s) => format!("{:?}", s.expose()),
        None => "None".to_string(),
    }
}

/// Every field of the result (or the error), one line each.
fn render(result: &Result<Loaded, ConfigError>) -> Vec<String> {
    let loaded = match result {
        Ok(loaded) => loaded,
        Err(e) => return vec![format!("error: {e}")],
    };
    let (c, e, s) = (
        &loaded.config,
        &loaded.config.exchange,
        &loaded.config.starface,
    );
    let mut out = vec![
        format!("exchange.backend = {:?}", e.backend),
        format!("exchange.url = {:?}", e.url),
        format!("exchange.auth = {:?}", e.auth),
        format!("exchange.username = {:?}", e.username),
        format!("exchange.password = {}", secret(&e.password)),
        format!("exchange.lookup = {:?}", e.lookup),
        format!("exchange.impersonation = {}", e.impersonation),
        format!("exchange.tenant_id = {:?}", e.tenant_id),
        format!("exchange.client_id = {:?}", e.client_id),
        format!("exchange.client_secret = {}", secret(&e.client_secret)),
        format!("exchange.token_url = {:?}", e.token_url),
        format!("exchange.graph_url = {:?}", e.graph_url),
        format!("exchange.ca_file = {:?}", e.ca_file),
        format!("exchange.timeout = {:?}", e.timeout),
        format!("starface.url = {:?}", s.url),
        format!("starface.login = {:?}", s.login),
        format!("starface.password = {:?}", s.password.expose()),
        format!("starface.login_type = {:?}", s.login_type),
        format!("starface.group = {:?}", s.group),
        format!("starface.insecure_tls = {}", s.insecure_tls),
        format!("actions.free = {:?}", c.actions.free),
        format!("actions.tentative = {:?}", c.actions.tentative),
        format!("actions.busy = {:?}", c.actions.busy),
        format!("actions.oof = {:?}", c.actions.oof),
        format!(
            "actions.working_elsewhere = {:?}",
            c.actions.working_elsewhere
        ),
        format!(
            "actions.forward_internal_calls = {}",
            c.actions.forward_internal_calls
        ),
        format!("chat.set_presence = {}", c.chat.set_presence),
        format!("chat.subject_as_text = {}", c.chat.subject_as_text),
        format!(
            "chat.join_parallel_subjects = {}",
            c.chat.join_parallel_subjects
        ),
        format!("chat.private_text = {:?}", c.chat.private_text),
        format!("chat.rpc_method = {:?}", c.chat.rpc_method),
        format!("sync.poll_interval = {:?}", c.sync.poll_interval),
        format!("sync.lookahead = {:?}", c.sync.lookahead),
        format!("sync.directory_refresh = {:?}", c.sync.directory_refresh),
        format!("sync.state_dir = {:?}", c.sync.state_dir),
        format!("log.level = {:?}", c.log.level),
        format!("log.file = {:?}", c.log.file),
    ];
    out.extend(loaded.warnings.iter().map(|w| format!("warning: {w}")));
    out
}

/// Loads `text` (with `$DIR` standing for the case's directory, where `files` are written
/// with their modes and the configuration file is `config.toml`, mode 600 unless `files` lists
/// it with another mode and no contents), then compares:
/// an expected error exactly; otherwise each expected field line must be present and the
/// warnings must be exactly those expected.
fn check(files: &[(&str, &str, u32)], text: &str, expected: &str) {
    let dir = Dir::new();
    let mut config_mode = 0o600;
    for (name, contents, mode) in files {
        if *name == "config.toml" {
            config_mode = *mode;
        } else {
            dir.write(name, contents.as_bytes(), *mode);
        }
    }
    let mut full = text.replace("$DIR", &dir.text());
    if !full.contains("[exchange]") {
        full.push_str(EXCHANGE);
    }
    if !full.contains("[starface]") {
        full.push_str(STARFACE);
    }
    let path = dir.write("config.toml", full.as_bytes(), config_mode);
    let result = from_str(&full, &path, &env);
    let actual: Vec<String> = render(&result)
        .iter()
        .map(|l| l.replace(&dir.text(), "$DIR"))
        .collect();
    let expected: Vec<&str> = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let shown = actual.join("\n");
    if expected.iter().any(|l| l.starts_with("error:"))
        || actual.iter().any(|l| l.starts_with("error:"))
    {
        assert_eq!(shown, expected.join("\n"), "\ninput:\n{full}");
        return;
    }
    for line in &expected {
        assert!(
            actual.iter().any(|a| a == line),
            "missing {line:?} in\n{shown}\ninput:\n{full}"
        );
    }
    let warnings: Vec<&str> = actual
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("warning:"))
        .collect();
    let expected_warnings: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(
        warnings, expected_warnings,
        "warnings differ; input:\n{full}"
    );
}

#[test]
fn defaults() {
    check(
        &[],
        "",
        r#"
        exchange.backend = Ews
        exchange.url = "https://mail.example.com/EWS/Exchange.asmx"
        exchange.auth = Basic
        exchange.username = "svc"
        exchange.password = "ews-pw"
        exchange.lookup = Availability
        exchange.impersonation = false
        exchange.tenant_id = ""
        exchange.client_id = ""
        exchange.client_secret = None
        exchange.token_url = "https://login.microsoftonline.com//oauth2/v2.0/token"
        exchange.graph_url = "https://graph.microsoft.com/v1.0"
        exchange.ca_file = None
        exchange.timeout = 30s
        starface.url = "http://127.0.0.1"
        starface.login = "0001"
        starface.password = "sf-pw"
        starface.login_type = Internal
        starface.group = "Exchange-Sync"
        starface.insecure_tls = false
        actions.free = None
        actions.tentative = None
        actions.busy = Dnd
        actions.oof = Forward
        actions.working_elsewhere = None
        actions.forward_internal_calls = false
        chat.set_presence = false
        chat.subject_as_text = false
        chat.join_parallel_subjects = false
        chat.private_text = "Private appointment"
        chat.rpc_method = "ExchangeStatusSync.setChatPresence"
        sync.poll_interval = 120s
        sync.lookahead = 7200s
        sync.directory_refresh = 600s
        sync.state_dir = "/var/lib/exchange-status-sync"
        log.level = Info
        log.file = None
        "#,
    );
}

#[test]
fn every_key_set() {
    check(
        &[("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0o644)],
        r#"[exchange]
backend = "ews"
url = "https://mail.example.com/EWS/Exchange.asmx"
auth = "oauth2"
lookup = "calendar"
impersonation = true
tenant_id = "contoso.onmicrosoft.com"
client_id = "abc-123"
client_secret_env = "CLIENT_SECRET"
token_url = "https://login.example.com/{tenant_id}/token/{tenant_id}"
ca_file = "ca.pem"
timeout_secs = 5
[starface]
url = "https://pbx.example.com:8443/"
login = "0002"
password = "sf"
login_type = "active-directory"
group = "Sales"
insecure_tls = false
[actions]
free = "forward"
tentative = "dnd"
busy = "none"
oof = "dnd"
working_elsewhere = "forward"
forward_internal_calls = true
[chat]
set_presence = true
subject_as_text = true
join_parallel_subjects = true
private_text = ""
rpc_method = "Other.method"
[sync]
poll_interval_secs = 60
lookahead_hours = 48
directory_refresh_secs = 3_600
state_dir = "state"
[log]
level = "trace"
file = "/var/log/ess.log"
"#,
        r#"
        exchange.backend = Ews
        exchange.auth = OAuth2
        exchange.password = None
        exchange.lookup = Calendar
        exchange.impersonation = true
        exchange.tenant_id = "contoso.onmicrosoft.com"
        exchange.client_id = "abc-123"
        exchange.client_secret = "env-client-secret"
        exchange.token_url = "https://login.example.com/contoso.onmicrosoft.com/token/contoso.onmicrosoft.com"
        exchange.graph_url = "https://graph.microsoft.com/v1.0"
        exchange.ca_file = Some("$DIR/ca.pem")
        exchange.timeout = 5s
        starface.url = "https://pbx.example.com:8443"
        starface.login = "0002"
        starface.password = "sf"
        starface.login_type = ActiveDirectory
        starface.group = "Sales"
        actions.free = Forward
        actions.tentative = Dnd
        actions.busy = None
        actions.oof = Dnd
        actions.working_elsewhere = Forward
        actions.forward_internal_calls = true
        chat.set_presence = true
        chat.subject_as_text = true
        chat.join_parallel_subjects = true
        chat.private_text = ""
        chat.rpc_method = "Other.method"
        sync.poll_interval = 60s
        sync.lookahead = 172800s
        sync.directory_refresh = 3600s
        sync.state_dir = "$DIR/state"
        log.level = Trace
        log.file = Some("/var/log/ess.log")
        "#,
    );
}

#[test]
fn backends() {
    // Graph: OAuth2 keys required, the EWS keys are accepted with a warning each; keys left at
    // their defaults or "" get none.
    check(
        &[],
        "[exchange]\nbackend = \"graph\"\nurl = \"\"\nauth = \"basic\"\nlookup = \"availability\"\nimpersonation = false\nusername = \"\"\npassword_file = \"\"\ntenant_id = \"t1\"\nclient_id = \"c1\"\nclient_secret = \"cs\"\n",
        "exchange.backend = Graph\nexchange.url = \"\"",
    );
    let graph = r#"[exchange]
backend = "graph"
url = "https://mail.example.com/EWS/Exchange.asmx"
auth = "oauth2"
username = "svc"
password_file = "does-not-exist"
lookup = "calendar"
impersonation = true
tenant_id = "t1"
client_id = "c1"
client_secret = "cs"
graph_url = "https://graph.example.com/v1.0//"
"#;
    check(
        &[],
        graph,
        r#"
        exchange.backend = Graph
        exchange.password = None
        exchange.client_secret = "cs"
        exchange.token_url = "https://login.microsoftonline.com/t1/oauth2/v2.0/token"
        exchange.graph_url = "https://graph.example.com/v1.0"
        exchange.impersonation = true
        warning: $DIR/config.toml:3: exchange.url is not used with backend = "graph"; it is ignored
        warning: $DIR/config.toml:4: exchange.auth is not used with backend = "graph"; it is ignored
        warning: $DIR/config.toml:7: exchange.lookup is not used with backend = "graph"; it is ignored
        warning: $DIR/config.toml:8: exchange.impersonation is not used with backend = "graph"; it is ignored
        warning: $DIR/config.toml:5: exchange.username is not used with backend = "graph"; it is ignored
        warning: $DIR/config.toml:6: exchange.password_file is not used with backend = "graph"; it is ignored
        "#,
    );
    // EWS with OAuth2: impersonation is forced on; an explicit false is reported.
    check(
        &[],
        r#"[exchange]
url = "https://outlook.office365.com/EWS/Exchange.asmx"
auth = "oauth2"
impersonation = false
tenant_id = "t1"
client_id = "c1"
client_secret = "cs"
username = "leftover"
graph_url = "https://graph.microsoft.com/v1.0"
"#,
        r#"
        exchange.impersonation = true
        exchange.password = None
        exchange.client_secret = "cs"
        warning: $DIR/config.toml:8: exchange.username is not used with auth = "oauth2"; it is ignored
        warning: $DIR/config.toml:4: exchange.impersonation = false is ignored: impersonation is always on with auth = "oauth2"
        "#,
    );
    // EWS with Basic: OAuth2 keys and graph_url are accepted with warnings, defaults are not.
    check(
        &[],
        r#"[exchange]
url = "https://mail.example.com/EWS/Exchange.asmx"
username = "svc"
password = "pw"
impersonation = true
tenant_id = "t1"
client_id = ""
client_secret_file = "nowhere"
token_url = "https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token"
graph_url = "https://graph.example.com/v1.0"
"#,
        r#"
        exchange.client_secret = None
        exchange.impersonation = true
        warning: $DIR/config.toml:6: exchange.tenant_id is not used with backend = "ews" and auth = "basic"; it is ignored
        warning: $DIR/config.toml:8: exchange.client_secret_file is not used with backend = "ews" and auth = "basic"; it is ignored
        warning: $DIR/config.toml:10: exchange.graph_url is not used with backend = "ews"; it is ignored
        warning: $DIR/config.toml:5: exchange.impersonation = true has no effect with lookup = "availability" and auth = "basic"; it applies to lookup = "calendar"
        "#,
    );
}

#[test]
fn toml_forms_through_validation() {
    // A byte-order mark, CRLF line ends, comments after values and `#` inside strings.
    check(
        &[],
        "\u{FEFF}[chat]\r\nprivate_text = \"Busy # really\" # a comment\r\nrpc_method = 'A.b' # another\r\n",
        r#"
        chat.private_text = "Busy # really"
        chat.rpc_method = "A.b"
        "#,
    );
    check(
        &[],
        "[chat]\nprivate_text = \"Priv\\u00e4t\\t\\\"x\\\" \\\\ \\U0001F600\"\n",
        r#"chat.private_text = "Privät\t\"x\" \\ 😀""#,
    );
    check(
        &[],
        "[sync]\npoll_interval_secs = 1_200\n",
        "sync.poll_interval = 1200s",
    );
    check(
        &[],
        "[sync]\npoll_interval_secs = +60\n",
        "sync.poll_interval = 60s",
    );
    check(
        &[],
        "[sync]\nstate_dir = \"/a\"\n[exchange.extra]\n",
        "error: $DIR/config.toml:3: nested tables ([exchange.…]) are not used in this file; use a plain [table]",
    );
    check(
        &[],
        "[[sync]]\n",
        "error: $DIR/config.toml:1: arrays of tables ([[...]]) are not used in this file; use a plain [table]",
    );
    check(
        &[],
        "[log]\nlevel = [\"info\"]\n",
        "error: $DIR/config.toml:2: `level` is an array; arrays are not used in this file",
    );
    check(
        &[],
        "[log]\nlevel = { a = 1 }\n",
        "error: $DIR/config.toml:2: `level` is an inline table; inline tables are not used in this file",
    );
    check(
        &[],
        "[log]\nlevel = \"info\"\nlevel = \"debug\"\n",
        "error: $DIR/config.toml:3: the key `level` is set twice in [log] (first on line 2); keep one",
    );
    check(
        &[],
        "[log]\n[sync]\n[log]\n",
        "error: $DIR/config.toml:3: the table [log] appears twice (first on line 1); put all of its keys under one header",
    );
    check(
        &[],
        "[sync]\nlookahead_hours = 1.5\n",
        "error: $DIR/config.toml:2: `lookahead_hours` = 1.5: floating-point numbers are not used in this file; write a whole number",
    );
    check(
        &[],
        "[log]\nlevel = \"\\x\"\n",
        "error: $DIR/config.toml:2: invalid escape `\\x` in a string; write `\\\\` for a backslash, or use a literal string in single quotes",
    );
}

#[test]
fn unknown_tables_and_keys() {
    let tables = "[exchange], [starface], [actions], [chat], [sync], [log]";
    check(
        &[],
        "level = \"info\"\n",
        &format!("error: $DIR/config.toml:1: `level` is set before any table; every key belongs under one of {tables}"),
    );
    check(
        &[],
        "[exchang]\n",
        &format!("error: $DIR/config.toml:1: [exchang] is not a table of this configuration; the tables are {tables}"),
    );
    check(
        &[],
        "[\"a\\nb\"]\n",
        &format!("error: $DIR/config.toml:1: [\"a\\nb\"] is not a table of this configuration; the tables are {tables}"),
    );
    check(
        &[],
        "[log]\n\"odd key\" = 1\n",
        "error: $DIR/config.toml:2: log.\"odd key\" is not a known key; [log] takes level, file",
    );
    for (table, keys) in [
        ("exchange", "backend, url, auth, username, password, password_file, password_env, lookup, impersonation, tenant_id, client_id, client_secret, client_secret_file, client_secret_env, token_url, graph_url, ca_file, timeout_secs"),
        ("starface", "url, login, password, password_file, password_env, login_type, group, insecure_tls"),
        ("actions", "free, tentative, busy, oof, working_elsewhere, forward_internal_calls"),
        ("chat", "set_presence, subject_as_text, join_parallel_subjects, private_text, rpc_method"),
        ("sync", "poll_interval_secs, lookahead_hours, directory_refresh_secs, state_dir"),
        ("log", "level, file"),
    ] {
        check(
            &[],
            &format!("[{table}]\n# comment\nbogus_key = 1\n"),
            &format!("error: $DIR/config.toml:3: {table}.bogus_key is not a known key; [{table}] takes {keys}"),
        );
    }
}

#[test]
fn wrong_types() {
    for (table, key, value, expected, found) in [
        (
            "exchange",
            "backend",
            "1",
            "a string in quotes",
            "a whole number",
        ),
        (
            "exchange",
            "url",
            "true",
            "a string in quotes",
            "true or false",
        ),
        (
            "exchange",
            "impersonation",
            "\"yes\"",
            "true or false (without quotes)",
            "a string",
        ),
        (
            "exchange",
            "timeout_secs",
            "\"30\"",
            "a whole number (without quotes)",
            "a string",
        ),
        (
            "exchange",
            "password",
            "1234",
            "a string in quotes",
            "a whole number",
        ),
        (
            "exchange",
            "password_file",
            "false",
            "a string in quotes",
            "true or false",
        ),
        (
            "exchange",
            "ca_file",
            "0",
            "a string in quotes",
            "a whole number",
        ),
        (
            "starface",
            "login",
            "1",
            "a string in quotes",
            "a whole number",
        ),
        (
            "starface",
            "insecure_tls",
            "1",
            "true or false (without quotes)",
            "a whole number",
        ),
        (
            "actions",
            "busy",
            "true",
            "\"none\", \"dnd\" or \"forward\"",
            "true or false",
        ),
        (
            "actions",
            "forward_internal_calls",
            "\"false\"",
            "true or false (without quotes)",
            "a string",
        ),
        (
            "chat",
            "set_presence",
            "0",
            "true or false (without quotes)",
            "a whole number",
        ),
        (
            "chat",
            "private_text",
            "false",
            "a string in quotes",
            "true or false",
        ),
        (
            "sync",
            "poll_interval_secs",
            "\"120\"",
            "a whole number (without quotes)",
            "a string",
        ),
        (
            "sync",
            "state_dir",
            "1",
            "a string in quotes",
            "a whole number",
        ),
        ("log", "level", "3", "a string in quotes", "a whole number"),
        (
            "log",
            "file",
            "false",
            "a string in quotes",
            "true or false",
        ),
    ] {
        // Put the key into its table on line 2, keeping the rest of the minimal file valid.
        let text = match table {
            "exchange" => format!(
                "[exchange]\n{key} = {value}\nurl = \"https://x.example\"\nusername = \"u\"\n"
            ),
            "starface" => format!("[starface]\n{key} = {value}\nlogin = \"1\"\npassword = \"p\"\n"),
            _ => format!("[{table}]\n{key} = {value}\n"),
        };
        let text = match key {
            "url" => text.replace("url = \"https://x.example\"\n", ""),
            "login" => text.replace("login = \"1\"\n", ""),
            _ => text,
        };
        check(
            &[],
            &text,
            &format!("error: $DIR/config.toml:2: {table}.{key} must be {expected}, not {found}"),
        );
    }
}

#[test]
fn invalid_values() {
    for (text, expected) in [
        ("[actions]\nbusy = \"dnd2\"\n", r#"actions.busy = "dnd2" is not allowed; use "none", "dnd" or "forward" (or the numbers 0, 1 or 2)"#),
        ("[actions]\noof = 3\n", r#"actions.oof = 3 is not allowed; use "none", "dnd" or "forward" (or the numbers 0, 1 or 2)"#),
        ("[exchange]\nbackend = \"owa\"\n", r#"exchange.backend = "owa" is not allowed; use "ews" or "graph""#),
        ("[exchange]\nauth = \"kerberos\"\n", r#"exchange.auth = "kerberos" is not allowed; use "basic", "ntlm" or "oauth2""#),
        ("[exchange]\nlookup = \"Calendar\"\n", r#"exchange.lookup = "Calendar" is not allowed; use "availability" or "calendar""#),
        ("[starface]\nlogin_type = \"ad\"\n", r#"starface.login_type = "ad" is not allowed; use "internal" or "active-directory""#),
        ("[log]\nlevel = \"verbose\"\n", r#"log.level = "verbose" is not allowed; use "error", "warn", "info", "debug" or "trace""#),
        ("[sync]\npoll_interval_secs = 0\n", "sync.poll_interval_secs = 0 is not allowed; use a whole number of seconds from 1 to 86400"),
        ("[sync]\npoll_interval_secs = -5\n", "sync.poll_interval_secs = -5 is not allowed; use a whole number of seconds from 1 to 86400"),
        ("[sync]\nlookahead_hours = 0\n", "sync.lookahead_hours = 0 is not allowed; use a whole number of hours from 1 to 8784"),
        ("[sync]\nlookahead_hours = 9_223_372_036_854_775_807\n", "sync.lookahead_hours = 9223372036854775807 is not allowed; use a whole number of hours from 1 to 8784"),
        ("[sync]\ndirectory_refresh_secs = 0\n", "sync.directory_refresh_secs = 0 is not allowed; use a whole number of seconds from 1 to 604800"),
        ("[exchange]\ntimeout_secs = 0\n", "exchange.timeout_secs = 0 is not allowed; use a whole number of seconds from 1 to 3600"),
        ("[sync]\nstate_dir = \"\"\n", r#"sync.state_dir = "" is not allowed; use the directory that holds state.json, e.g. "/var/lib/exchange-status-sync""#),
        ("[starface]\nlogin = \" \"\n", r#"starface.login = " " is not allowed; use the login ID of a STARFACE admin user, e.g. "0001""#),
        ("[starface]\ngroup = \"\"\n", r#"starface.group = "" is not allowed; use the name of the STARFACE group whose members are handled"#),
        ("[chat]\nrpc_method = \"\"\n", r#"chat.rpc_method = "" is not allowed; use the XML-RPC method name of the module's entry point (letters, digits, _ . : /), e.g. "ExchangeStatusSync.setChatPresence""#),
        ("[chat]\nrpc_method = \"a b\"\n", r#"chat.rpc_method = "a b" is not allowed; use the XML-RPC method name of the module's entry point (letters, digits, _ . : /), e.g. "ExchangeStatusSync.setChatPresence""#),
        ("[exchange]\nurl = \"ftp://mail.example.com/\"\n", r#"exchange.url = "ftp://mail.example.com/" is not allowed; use an http:// or https:// URL (e.g. "https://mail.example.com/EWS/Exchange.asmx")"#),
        ("[exchange]\nurl = \"mail.example.com\"\n", r#"exchange.url = "mail.example.com" is not allowed; use an http:// or https:// URL (e.g. "https://mail.example.com/EWS/Exchange.asmx")"#),
        ("[exchange]\nurl = \"https:///EWS\"\n", r#"exchange.url = "https:///EWS" is not allowed; the URL needs a host (e.g. "https://mail.example.com/EWS/Exchange.asmx")"#),
        ("[exchange]\nurl = \"https://u:p@mail.example.com/\"\n", r#"exchange.url = "https://mail.example.com/" is not allowed; put no user name or password into the URL; use the username and password keys (e.g. "https://mail.example.com/EWS/Exchange.asmx")"#),
        ("[exchange]\nurl = \"https://mail example.com/\"\n", r#"exchange.url = "https://mail example.com/" is not allowed; a URL cannot contain spaces or control characters (e.g. "https://mail.example.com/EWS/Exchange.asmx")"#),
        ("[starface]\nurl = \"http://pbx:0\"\n", r#"starface.url = "http://pbx:0" is not allowed; 0 is not a port number (1 to 65535) (e.g. "http://127.0.0.1")"#),
        ("[starface]\nurl = \"http://pbx:http\"\n", r#"starface.url = "http://pbx:http" is not allowed; http is not a port number (1 to 65535) (e.g. "http://127.0.0.1")"#),
        ("[starface]\nurl = \"http://[::1\"\n", r#"starface.url = "http://[::1" is not allowed; an IPv6 address needs a closing `]` (e.g. "http://127.0.0.1")"#),
        ("[starface]\nurl = \"http://[zz]/\"\n", r#"starface.url = "http://[zz]/" is not allowed; [zz] is not an IPv6 address (e.g. "http://127.0.0.1")"#),
        ("[starface]\nurl = \"http://[::1]x\"\n", r#"starface.url = "http://[::1]x" is not allowed; only `:port` may follow an IPv6 address (e.g. "http://127.0.0.1")"#),
        ("[starface]\nurl = \"http://pb*x/\"\n", r#"starface.url = "http://pb*x/" is not allowed; pb*x is not a host name (e.g. "http://127.0.0.1")"#),
        ("[exchange]\ngraph_url = \"graph.microsoft.com\"\n", r#"exchange.graph_url = "graph.microsoft.com" is not allowed; use an http:// or https:// URL (e.g. "https://graph.microsoft.com/v1.0")"#),
        ("[exchange]\ntoken_url = \"login/{tenant_id}\"\n", r#"exchange.token_url = "login/{tenant_id}" is not allowed; use an http:// or https:// URL (e.g. "https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token")"#),
        ("[exchange]\nusername = \"dom:user\"\n", r#"exchange.username = "dom:user" is not allowed; Basic authentication cannot carry a `:` or control characters in the user name"#),
        ("[exchange]\ntenant_id = \"a/b\"\n", r#"exchange.tenant_id = "a/b" is not allowed; use the directory (tenant) ID or its domain, e.g. "contoso.onmicrosoft.com""#),
        ("[exchange]\nclient_id = \"a b\"\n", r#"exchange.client_id = "a b" is not allowed; use the application (client) ID of the app registration, without spaces"#),
    ] {
        // The case's key sits on line 2; the lines after it complete the minimal file.
        let mut text = text.to_string();
        let needed: &[(&str, &str)] = if text.starts_with("[exchange]") {
            &[("url", "url = \"https://x.example\"\n"), ("username", "username = \"u\"\n"), ("password", "password = \"p\"\n")]
        } else if text.starts_with("[starface]") {
            &[("login", "login = \"1\"\n"), ("password", "password = \"p\"\n")]
        } else {
            &[]
        };
        for (key, line) in needed {
            if !text.contains(&format!("\n{key} =")) {
                text.push_str(line);
            }
        }
        check(&[], &text, &format!("error: $DIR/config.toml:2: {expected}"));
    }
}

#[test]
fn secrets() {
    let sf = "[starface]\nlogin = \"0001\"\n";
    // Each form, and how a file's trailing newline is stripped (one only; \n or \r\n).
    for (files, line, expected) in [
        (vec![], "password = \"inline\"", "inline"),
        (
            vec![("pw", "secret\n", 0o600)],
            "password_file = \"$DIR/pw\"",
            "secret",
        ),
        (
            vec![("pw", "secret\r\n", 0o600)],
            "password_file = \"$DIR/pw\"",
            "secret",
        ),
        (
            vec![("pw", "secret\n\n", 0o600)],
            "password_file = \"$DIR/pw\"",
            "secret\n",
        ),
        (
            vec![("pw", "secret\r\n\r\n", 0o600)],
            "password_file = \"$DIR/pw\"",
            "secret\r\n",
        ),
        (
            vec![("pw", "secret", 0o600)],
            "password_file = \"$DIR/pw\"",
            "secret",
        ),
        (
            vec![("pw", "sec ret\t", 0o400)],
            "password_file = \"pw\"",
            "sec ret\t",
        ),
        (vec![], "password_env = \"EWS_PW\"", "env-pw\n"),
        (
            vec![("pw", "file\n", 0o600)],
            "password = \"\"\npassword_file = \"pw\"",
            "file",
        ),
    ] {
        check(
            &files,
            &format!("{sf}{line}\n"),
            &format!("starface.password = {expected:?}"),
        );
    }
    check(
        &[("pw", "x\n", 0o600)],
        &format!("{sf}password = \"a\"\npassword_file = \"pw\"\n"),
        "error: $DIR/config.toml:4: starface.password and starface.password_file are both set; give the secret in exactly one of them",
    );
    check(
        &[],
        &format!("{sf}password_env = \"EWS_PW\"\npassword = \"a\"\npassword_file = \"pw\"\n"),
        "error: $DIR/config.toml:5: starface.password, starface.password_file and starface.password_env are all set; give the secret in exactly one of them",
    );
    // Two forms are refused even for a secret the backend does not use.
    check(
        &[],
        "[exchange]\nbackend = \"graph\"\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"s\"\npassword = \"a\"\npassword_env = \"B\"\n",
        "error: $DIR/config.toml:7: exchange.password and exchange.password_env are both set; give the secret in exactly one of them",
    );
    check(
        &[],
        sf,
        "error: $DIR/config.toml: starface.password is missing; it is required to log in to STARFACE: set exactly one of starface.password_file, starface.password_env or starface.password",
    );
    check(
        &[],
        "[exchange]\nurl = \"https://x.example\"\nusername = \"u\"\npassword = \"\"\n",
        "error: $DIR/config.toml: exchange.password is missing; it is required with backend = \"ews\" and auth = \"basic\": set exactly one of exchange.password_file, exchange.password_env or exchange.password",
    );
    check(
        &[],
        "[exchange]\nbackend = \"graph\"\ntenant_id = \"t\"\nclient_id = \"c\"\n",
        "error: $DIR/config.toml: exchange.client_secret is missing; it is required with backend = \"graph\": set exactly one of exchange.client_secret_file, exchange.client_secret_env or exchange.client_secret",
    );
    check(
        &[],
        "[exchange]\nurl = \"https://x.example\"\nauth = \"oauth2\"\ntenant_id = \"t\"\nclient_id = \"c\"\n",
        "error: $DIR/config.toml: exchange.client_secret is missing; it is required with auth = \"oauth2\": set exactly one of exchange.client_secret_file, exchange.client_secret_env or exchange.client_secret",
    );
    check(
        &[],
        &format!("{sf}password_file = \"missing.secret\"\n"),
        "error: $DIR/config.toml:3: starface.password_file: cannot read the secret file $DIR/missing.secret: No such file or directory (os error 2)",
    );
    check(
        &[],
        &format!("{sf}password_file = \"$DIR\"\n"),
        "error: $DIR/config.toml:3: starface.password_file: cannot read the secret file $DIR: Is a directory (os error 21)",
    );
    check(
        &[],
        &format!("{sf}password_env = \"NOT_SET\"\n"),
        "error: $DIR/config.toml:3: starface.password_env: the environment variable NOT_SET is not set (or not valid Unicode) in the daemon's environment",
    );
    check(
        &[],
        &format!("{sf}password_env = \"EMPTY\"\n"),
        "error: $DIR/config.toml:3: starface.password_env: the environment variable EMPTY is empty",
    );
    check(
        &[("pw", "\r\n", 0o600)],
        &format!("{sf}password_file = \"pw\"\n"),
        "error: $DIR/config.toml:3: starface.password_file: the secret file $DIR/pw is empty",
    );
    check(
        &[("pw", "", 0o600)],
        &format!("{sf}password_file = \"pw\"\n"),
        "error: $DIR/config.toml:3: starface.password_file: the secret file $DIR/pw is empty",
    );
}

#[test]
fn secret_file_that_is_not_text() {
    let dir = Dir::new();
    dir.write("pw", b"\xff\xfe", 0o600);
    let text = format!(
        "{EXCHANGE}{}",
        STARFACE.replace("password = \"sf-pw\"", "password_file = \"pw\"")
    );
    let path = dir.write("config.toml", text.as_bytes(), 0o600);
    let result = from_str(&text, &path, &env);
    assert_eq!(
        render(&result),
        [format!(
            "error: {0}/config.toml:7: starface.password_file: cannot read the secret file {0}/pw: it is not UTF-8 text",
            dir.text()
        )]
    );
}

#[test]
fn permission_warnings() {
    let sf_file = "[starface]\nlogin = \"0001\"\npassword_file = \"pw\"\n";
    let ex_file =
        "[exchange]\nurl = \"https://x.example\"\nusername = \"u\"\npassword_file = \"pw\"\n";
    check(
        &[("pw", "s\n", 0o644)],
        &format!("{ex_file}{sf_file}"),
        r#"
        warning: $DIR/config.toml:4: exchange.password_file: the secret file $DIR/pw can be read by group or others (mode 644); run chmod 600 on it
        warning: $DIR/config.toml:7: starface.password_file: the secret file $DIR/pw can be read by group or others (mode 644); run chmod 600 on it
        "#,
    );
    check(
        &[("pw", "s\n", 0o600), ("config.toml", "", 0o644)],
        &format!("{ex_file}{sf_file}"),
        "",
    );
    check(
        &[("pw", "s\n", 0o400), ("config.toml", "", 0o600)],
        &format!("{ex_file}{sf_file}"),
        "",
    );
    check(
        &[("config.toml", "", 0o640)],
        "",
        "warning: $DIR/config.toml: holds exchange.password and starface.password inline and can be read by group or others (mode 640); run chmod 600 on it, or use the *_file keys",
    );
    check(
        &[("pw", "s\n", 0o600), ("config.toml", "", 0o604)],
        &format!("{ex_file}[starface]\nlogin = \"0001\"\npassword = \"x\"\n"),
        "warning: $DIR/config.toml: holds starface.password inline and can be read by group or others (mode 604); run chmod 600 on it, or use the *_file keys",
    );
}

#[test]
fn missing_keys() {
    check(
        &[],
        "[exchange]\nusername = \"u\"\npassword = \"p\"\n",
        "error: $DIR/config.toml: exchange.url is missing; it is required with backend = \"ews\"",
    );
    check(
        &[],
        "[exchange]\nurl = \"\"\nusername = \"u\"\npassword = \"p\"\n",
        "error: $DIR/config.toml: exchange.url is missing; it is required with backend = \"ews\"",
    );
    check(
        &[],
        "[exchange]\nurl = \"https://x.example\"\npassword = \"p\"\n",
        "error: $DIR/config.toml: exchange.username is missing; it is required with backend = \"ews\" and auth = \"basic\"",
    );
    check(
        &[],
        "[exchange]\nbackend = \"graph\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
        "error: $DIR/config.toml: exchange.tenant_id is missing; it is required with backend = \"graph\"",
    );
    check(
        &[],
        "[exchange]\nurl = \"https://x.example\"\nauth = \"oauth2\"\ntenant_id = \"t\"\nclient_secret = \"s\"\n",
        "error: $DIR/config.toml: exchange.client_id is missing; it is required with auth = \"oauth2\"",
    );
    check(
        &[],
        "[starface]\npassword = \"p\"\n",
        "error: $DIR/config.toml: starface.login is missing; it is required: the login ID of a STARFACE admin user, e.g. \"0001\"",
    );
    // No [exchange] at all: the backend defaults to EWS, which needs a URL.
    check(
        &[],
        "[exchange]\n",
        "error: $DIR/config.toml: exchange.url is missing; it is required with backend = \"ews\"",
    );
}

#[test]
fn files_and_paths() {
    check(
        &[],
        "[exchange]\nca_file = \"no-ca.pem\"\nurl = \"https://x.example\"\nusername = \"u\"\npassword = \"p\"\n",
        "error: $DIR/config.toml:2: exchange.ca_file: cannot use $DIR/no-ca.pem: No such file or directory (os error 2); give a PEM file of extra roots, or \"\" for the system roots",
    );
    check(
        &[],
        "[exchange]\nca_file = \"$DIR\"\nurl = \"https://x.example\"\nusername = \"u\"\npassword = \"p\"\n",
        "error: $DIR/config.toml:2: exchange.ca_file: cannot use $DIR: it is not a regular file; give a PEM file of extra roots, or \"\" for the system roots",
    );
    check(
        &[],
        "[exchange]\nca_file = \"\"\nurl = \"https://x.example\"\nusername = \"u\"\npassword = \"p\"\n[log]\nfile = \"\"\n",
        "exchange.ca_file = None\nlog.file = None",
    );
    check(
        &[],
        "[log]\nfile = \"ess.log\"\n[sync]\nstate_dir = \"/abs/state\"\n",
        "log.file = Some(\"$DIR/ess.log\")\nsync.state_dir = \"/abs/state\"",
    );
}

#[test]
fn actions_by_number() {
    check(
        &[],
        "[actions]\nfree = 0\ntentative = 1\nbusy = 2\noof = \"none\"\n",
        "actions.free = None\nactions.tentative = Dnd\nactions.busy = Forward\nactions.oof = None",
    );
}

#[test]
fn url_warnings() {
    let pw = "username = \"u\"\npassword = \"p\"\n";
    for (url, warned) in [
        ("http://mail.example.com/EWS/Exchange.asmx", true),
        ("HTTP://10.0.0.5/EWS/Exchange.asmx", true),
        ("https://mail.example.com/EWS/Exchange.asmx", false),
        ("http://127.0.0.1:8080/EWS/Exchange.asmx", false),
        ("http://127.8.9.10/ews", false),
        ("http://localhost:8080/ews", false),
        ("http://LOCALHOST/ews", false),
        ("http://sim.localhost/ews", false),
        ("http://[::1]:8080/ews", false),
    ] {
        let expected = if warned {
            format!("warning: $DIR/config.toml:2: exchange.url \"{url}\" is plain http:// to another host: the Exchange password crosses the network unencrypted; use https://")
        } else {
            format!("exchange.url = \"{url}\"")
        };
        check(
            &[],
            &format!("[exchange]\nurl = \"{url}\"\n{pw}"),
            &expected,
        );
    }
    check(
        &[],
        "[exchange]\nurl = \"http://ex.example/ews\"\nauth = \"oauth2\"\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"s\"\ntoken_url = \"http://login.example/{tenant_id}\"\n",
        r#"
        exchange.token_url = "http://login.example/t"
        warning: $DIR/config.toml:2: exchange.url "http://ex.example/ews" is plain http:// to another host: an OAuth2 access token crosses the network unencrypted; use https://
        warning: $DIR/config.toml:7: exchange.token_url "http://login.example/t" is plain http:// to another host: the client secret crosses the network unencrypted; use https://
        "#,
    );
    check(
        &[],
        "[exchange]\nbackend = \"graph\"\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"s\"\ngraph_url = \"http://graph.example/v1.0/\"\ntoken_url = \"http://127.0.0.1:9/{tenant_id}/token\"\n",
        r#"
        exchange.graph_url = "http://graph.example/v1.0"
        exchange.token_url = "http://127.0.0.1:9/t/token"
        warning: $DIR/config.toml:6: exchange.graph_url "http://graph.example/v1.0" is plain http:// to another host: an OAuth2 access token crosses the network unencrypted; use https://
        "#,
    );
    check(
        &[],
        "[starface]\nurl = \"http://pbx.example.com/\"\nlogin = \"0001\"\npassword = \"p\"\n",
        r#"
        starface.url = "http://pbx.example.com"
        warning: $DIR/config.toml:2: starface.url "http://pbx.example.com" is plain http:// to another host: the STARFACE login and tokens cross the network unencrypted; use https:// or run on the PBX
        "#,
    );
    check(
        &[],
        "[starface]\nurl = \"https://pbx.example.com\"\ninsecure_tls = true\nlogin = \"0001\"\npassword = \"p\"\n",
        "warning: $DIR/config.toml:3: starface.insecure_tls = true for the non-loopback host pbx.example.com: the PBX's certificate is not checked, so anyone on the path can read the login; give the PBX a certificate from a CA in the system's trust store, or run exchange-status-sync on the PBX and use https://127.0.0.1",
    );
    check(
        &[],
        "[starface]\nurl = \"https://127.0.0.1:443\"\ninsecure_tls = true\nlogin = \"0001\"\npassword = \"p\"\n",
        "starface.insecure_tls = true\nstarface.url = \"https://127.0.0.1:443\"",
    );
    check(
        &[],
        "[starface]\ninsecure_tls = true\nlogin = \"0001\"\npassword = \"p\"\n",
        "starface.insecure_tls = true",
    );
}

#[test]
fn load_reads_the_file() {
    let dir = Dir::new();
    let missing = dir.0.join("none.toml");
    let err = load(&missing).map(|_| ()).expect_err("no such file");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: cannot read the configuration file: No such file or directory (os error 2)",
            missing.display()
        )
    );
    assert!(matches!(err.kind, ErrorKind::Io(_)));

    let bad = dir.write(
        "bad.toml",
        b"[log]\nlevel = \"info\"\nfile = \"\xff\"\n",
        0o600,
    );
    let err = load(&bad).map(|_| ()).expect_err("not UTF-8");
    assert_eq!(
        err.to_string(),
        format!(
            "{}:3: the file is not UTF-8 text; save it as UTF-8",
            bad.display()
        )
    );

    dir.write("ews.secret", b"ews\n", 0o600);
    dir.write("sf.secret", b"sf\n", 0o600);
    let good = dir.write(
        "good.toml",
        b"[exchange]\nurl = \"https://x.example\"\nusername = \"u\"\npassword_file = \"ews.secret\"\n\
          [starface]\nlogin = \"0001\"\npassword_file = \"sf.secret\"\n",
        0o600,
    );
    let loaded = load(&good).expect("valid file");
    assert_eq!(loaded.config.path, good);
    assert_eq!(
        loaded.config.exchange.password.as_ref().map(Secret::expose),
        Some("ews")
    );
    assert_eq!(loaded.config.starface.password.expose(), "sf");
    assert_eq!(loaded.warnings, Vec::<String>::new());
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let dir = Dir::new();
    let text = format!("{EXCHANGE}{STARFACE}");
    let path = dir.write("config.toml", text.as_bytes(), 0o600);
    let loaded = from_str(&text, &path, &env).expect("valid");
    let debug = format!("{loaded:?}");
    assert!(
        !debug.contains("ews-pw") && !debug.contains("sf-pw"),
        "{debug}"
    );
}

/// The shipped example must load: its secret files are pointed at a temporary directory.
#[test]
fn example_file_loads() {
    let example = include_str!("../../package/config.example.toml");
    check(
        &[
            ("exchange.secret", "ews-secret\n", 0o600),
            ("starface.secret", "sf-secret\n", 0o600),
        ],
        &example.replace("/etc/exchange-status-sync/", "$DIR/"),
        r#"
        exchange.backend = Ews
        exchange.url = "https://mail.example.com/EWS/Exchange.asmx"
        exchange.auth = Ntlm
        exchange.username = "svc-starface@example.com"
        exchange.password = "ews-secret"
        exchange.lookup = Availability
        exchange.impersonation = false
        exchange.client_secret = None
        exchange.graph_url = "https://graph.microsoft.com/v1.0"
        exchange.ca_file = None
        exchange.timeout = 30s
        starface.url = "http://127.0.0.1"
        starface.login = "0001"
        starface.password = "sf-secret"
        starface.login_type = Internal
        starface.group = "Exchange-Sync"
        starface.insecure_tls = false
        actions.free = None
        actions.tentative = None
        actions.busy = Dnd
        actions.oof = Forward
        actions.working_elsewhere = None
        actions.forward_internal_calls = false
        chat.set_presence = false
        chat.subject_as_text = false
        chat.join_parallel_subjects = false
        chat.private_text = "Private appointment"
        chat.rpc_method = "ExchangeStatusSync.setChatPresence"
        sync.poll_interval = 120s
        sync.lookahead = 7200s
        sync.directory_refresh = 600s
        sync.state_dir = "/var/lib/exchange-status-sync"
        log.level = Info
        log.file = None
        "#,
    );
}

/// Every key of the contract's sample is in the example, in the sample's order.
#[test]
fn example_file_has_every_key() {
    // The other backend's keys are commented out (`# tenant_id = …`), so that the example as
    // installed gives no warning; they count as shown.
    let example: String = include_str!("../../package/config.example.toml")
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                }) =>
            {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let doc = toml::parse(&example).expect("example parses");
    let keys: Vec<String> = doc
        .tables
        .iter()
        .flat_map(|t| {
            t.entries
                .iter()
                .map(move |e| format!("{}.{}", t.name, e.key))
        })
        .collect();
    assert_eq!(
        keys.join(" "),
        "exchange.backend exchange.url exchange.auth exchange.username exchange.password_file \
         exchange.lookup exchange.impersonation exchange.tenant_id exchange.client_id \
         exchange.client_secret_file exchange.token_url exchange.graph_url exchange.ca_file \
         exchange.timeout_secs starface.url starface.login starface.password_file \
         starface.login_type starface.group starface.insecure_tls actions.free actions.tentative \
         actions.busy actions.oof actions.working_elsewhere actions.forward_internal_calls \
         chat.set_presence chat.subject_as_text chat.join_parallel_subjects chat.private_text \
         chat.rpc_method sync.poll_interval_secs sync.lookahead_hours \
         sync.directory_refresh_secs sync.state_dir log.level log.file"
    );
}
