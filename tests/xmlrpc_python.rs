//! The chat call against a stock XML-RPC server (Python's `xmlrpc.server`), not only our fake:
//! proof that what we send is standard XML-RPC and that types and text arrive intact.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ess::config::{LoginType, Secret, StarfaceConfig};
use ess::http::{HttpClient, HttpOptions};
use ess::model::Presence;
use ess::starface::{Starface, StarfaceError, Value};

const METHOD: &str = "chat.setPresence";

/// The Python server, killed when dropped; its stdout lines arrive on a channel.
struct PythonServer {
    child: Child,
    lines: mpsc::Receiver<String>,
    port: u16,
}

impl PythonServer {
    fn start() -> Option<PythonServer> {
        let found = Command::new("python3")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            eprintln!("note: python3 is not on PATH; skipping the stock XML-RPC server test");
            return None;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/xmlrpc_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(METHOD)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3");
        let stdout: ChildStdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = PythonServer {
            child,
            lines,
            port: 0,
        };
        server.port = server.next_line().parse().expect("port on the first line");
        Some(server)
    }

    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a line from the Python server")
    }

    /// The next recorded call as JSON.
    fn next_call(&self) -> Value {
        Value::parse(&self.next_line()).expect("JSON from the Python server")
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(port: u16) -> Starface {
    let cfg = StarfaceConfig {
        url: format!("http://127.0.0.1:{port}"),
        login: "123".into(),
        password: Secret::new("Pass123"),
        login_type: LoginType::Internal,
        group: "g".into(),
        insecure_tls: false,
    };
    let http = HttpClient::new(&HttpOptions {
        timeout: Duration::from_secs(10),
        max_body: 1 << 20,
        ca_file: None,
        insecure_tls: false,
    })
    .expect("client");
    Starface::new(&cfg, http).with_rpc_method(METHOD)
}

/// A member's Python type and JSON value text.
fn member(call: &Value, name: &str) -> (String, String) {
    let m = call
        .get("members")
        .and_then(|m| m.get(name))
        .unwrap_or_else(|| panic!("member {name} missing"));
    let ty = m
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    let value = m.get("value").map(Value::to_json).unwrap_or_default();
    (ty, value)
}

#[test]
fn a_stock_xmlrpc_server_receives_the_struct_intact() {
    let Some(server) = PythonServer::start() else {
        return;
    };
    let mut sf = client(server.port);
    let text = "Weekly <sync> & \"Grüße\" ä 😀 'quoted'";
    sf.set_chat(42, Some(Presence::DoNotDisturb), Some(text))
        .expect("call accepted");
    let call = server.next_call();
    assert_eq!(
        call.get("query").and_then(Value::as_str),
        Some("de.vertico.starface.auth=123:81d8af78c98b153485f7d48e3437eb735ba37f0f013c5e06ba74536776c5945694e7cde71e2effbed7b5a1d1a4566fadcd847ef4098c234052fdfd288e8b6ced")
    );
    assert_eq!(member(&call, "AccountID"), ("int".into(), "42".into()));
    assert_eq!(
        member(&call, "Chatpresence"),
        ("str".into(), "\"DO_NOT_DISTURB\"".into())
    );
    assert_eq!(member(&call, "ChangeText"), ("bool".into(), "true".into()));
    let (ty, value) = member(&call, "ChatPresenceText");
    assert_eq!(ty, "str");
    assert_eq!(Value::parse(&value).unwrap().as_str(), Some(text));
    let members = match call.get("members") {
        Some(Value::Object(m)) => m.len(),
        _ => 0,
    };
    assert_eq!(members, 4, "exactly the four inputs");

    // Neither presence nor text: empty string and ChangeText false.
    sf.set_chat(7, None, None).expect("call accepted");
    let call = server.next_call();
    assert_eq!(member(&call, "AccountID"), ("int".into(), "7".into()));
    assert_eq!(member(&call, "Chatpresence"), ("str".into(), "\"\"".into()));
    assert_eq!(member(&call, "ChangeText"), ("bool".into(), "false".into()));
    assert_eq!(
        member(&call, "ChatPresenceText"),
        ("str".into(), "\"\"".into())
    );
}

#[test]
fn a_fault_from_a_stock_server_is_an_error_with_its_text() {
    let Some(server) = PythonServer::start() else {
        return;
    };
    let mut sf = client(server.port);
    let err = sf
        .set_chat(13, Some(Presence::ExtendedAway), Some("Urlaub"))
        .unwrap_err();
    let _ = server.next_call();
    match &err {
        StarfaceError::RpcFault { code, message, .. } => {
            assert_eq!(*code, Some(13));
            assert!(
                message.contains("user 13 is <locked> & gesperrt: ä"),
                "{message}"
            );
        }
        other => panic!("expected a fault, got {other}"),
    }
    assert!(!err.to_string().contains("81d8af78"), "{err}");

    // An unknown method name is a fault too (stock servers answer with one).
    let mut other = client(server.port).with_rpc_method("no.such.method");
    let err = other.set_chat(1, None, None).unwrap_err();
    assert!(matches!(err, StarfaceError::RpcFault { .. }), "{err}");
    assert!(err.to_string().contains("no.such.method"), "{err}");
}
