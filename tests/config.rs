//! The configuration API as the command line uses it: `ess::config::load(path)`, an error whose
//! message names file, line and key, and warnings to log.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// A directory of its own per test, removed afterwards.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path =
            std::env::temp_dir().join(format!("ess-config-it-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        Dir(path)
    }

    fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, text).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The example file with its secret files in the test directory and one line changed.
fn example(dir: &Dir, from: &str, to: &str) -> PathBuf {
    dir.write("exchange.secret", "ews\n", 0o600);
    dir.write("starface.secret", "sf\n", 0o600);
    let text = include_str!("../package/config.example.toml").replace(
        "/etc/exchange-status-sync/",
        &format!("{}/", dir.0.display()),
    );
    assert!(text.contains(from), "the example has {from:?}");
    dir.write("config.toml", &text.replace(from, to), 0o600)
}

#[test]
fn a_bad_value_names_file_line_and_key() {
    let dir = Dir::new("bad");
    let path = example(&dir, "busy = \"dnd\"", "busy = \"dnd2\"");
    let line = fs::read_to_string(&path)
        .expect("read back")
        .lines()
        .position(|l| l.starts_with("busy ="))
        .map(|i| i + 1)
        .expect("busy line");
    let err = ess::config::load(&path)
        .map(|_| ())
        .expect_err("dnd2 is refused");
    assert_eq!(
        err.to_string(),
        format!(
            "{}:{line}: actions.busy = \"dnd2\" is not allowed; use \"none\", \"dnd\" or \"forward\" (or the numbers 0, 1 or 2)",
            path.display()
        )
    );
}

#[test]
fn the_example_loads_with_graph() {
    let dir = Dir::new("graph");
    let path = example(&dir, "backend = \"ews\"", "backend = \"graph\"");
    // The Graph keys are commented out in the example (it shows EWS); switched, they are in.
    let mut text = fs::read_to_string(&path).expect("read back");
    for key in [
        "tenant_id",
        "client_id",
        "client_secret_file",
        "token_url",
        "graph_url",
    ] {
        let commented = format!("\n# {key} = ");
        assert!(
            text.contains(&commented),
            "{key} is commented out in the example"
        );
        text = text.replace(&commented, &format!("\n{key} = "));
    }
    fs::write(&path, text).expect("write");
    dir.write("client.secret", "cs\r\n", 0o640);
    let loaded = ess::config::load(&path).expect("valid");
    let ex = &loaded.config.exchange;
    assert_eq!(ex.backend, ess::config::Backend::Graph);
    assert_eq!(ex.client_secret.as_ref().map(|s| s.expose()), Some("cs"));
    assert_eq!(ex.password, None);
    assert_eq!(
        ex.token_url,
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    let warnings = loaded.warnings.join("\n");
    // The EWS keys set in the example warn; those left at their defaults do not.
    for key in [
        "exchange.url ",
        "exchange.auth ",
        "exchange.username ",
        "exchange.password_file ",
        "client.secret can be read",
    ] {
        assert!(warnings.contains(key), "{key:?} in {warnings}");
    }
    for key in ["exchange.lookup ", "exchange.impersonation "] {
        assert!(!warnings.contains(key), "{key:?} in {warnings}");
    }
    assert_eq!(loaded.warnings.len(), 5, "{warnings}");
}
