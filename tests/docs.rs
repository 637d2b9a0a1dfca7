//! The documentation stays true to the example configuration: every key of
//! package/config.example.toml (also the commented-out ones) has its row in the key tables of
//! README.md and README.de.md, and the real binary loads the example, as shipped and switched
//! to Graph as its comments describe, without a single warning.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_exchange-status-sync");

fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `(table, key)` of every key line, set or commented out (`# key = …`).
fn example_keys(text: &str) -> Vec<(String, String)> {
    let mut table = String::new();
    let mut keys = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            table = rest.split(']').next().unwrap_or("").to_string();
            continue;
        }
        let line = line.strip_prefix("# ").unwrap_or(line);
        if !table.is_empty() && is_key_line(line) {
            let key = line.split(" = ").next().unwrap_or("").trim_end();
            keys.push((table.clone(), key.to_string()));
        }
    }
    keys
}

#[test]
fn every_example_key_is_documented_in_both_readmes() {
    let keys = example_keys(&repo_file("package/config.example.toml"));
    // The example shows every table and, commented out, the other backend's keys.
    for must in [
        ("exchange", "backend"),
        ("exchange", "client_secret_file"),
        ("exchange", "graph_url"),
        ("log", "file"),
    ] {
        assert!(
            keys.contains(&(must.0.to_string(), must.1.to_string())),
            "{must:?} not found in the example: {keys:?}"
        );
    }
    for readme in ["README.md", "README.de.md"] {
        let text = repo_file(readme);
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| ")).collect();
        for (table, key) in &keys {
            let documented = rows.iter().any(|row| {
                let cells: Vec<&str> = row.split(" | ").collect();
                cells.first() == Some(&format!("| {table}").as_str())
                    && cells
                        .get(1)
                        .is_some_and(|c| c.split(" / ").any(|k| k == format!("`{key}`")))
            });
            assert!(documented, "{readme}: no row for {table}.{key}");
        }
    }
}

/// The example with the paths moved into `dir`, the secret files it names created (owner
/// only), and the PBX on a port where nothing listens, so that `check` stops right after
/// loading the configuration.
fn installed_example(dir: &Path, text: &str) -> PathBuf {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir.join("state")).unwrap();
    let d = dir.display().to_string();
    let text = text
        .replace("/etc/exchange-status-sync/", &format!("{d}/"))
        .replace("/var/lib/exchange-status-sync", &format!("{d}/state"))
        .replace("url = \"http://127.0.0.1\"", "url = \"http://127.0.0.1:9\"");
    for name in ["exchange.secret", "starface.secret", "client.secret"] {
        let path = dir.join(name);
        fs::write(&path, "example-secret\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = dir.join("config.toml");
    fs::write(&config, text).unwrap();
    // install.sh installs it root:service-user 0640.
    fs::set_permissions(&config, fs::Permissions::from_mode(0o640)).unwrap();
    config
}

/// Runs `check` and returns its log lines at warn level (and any other output, for failures).
fn warnings_of(config: &Path) -> (Vec<String>, String) {
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // Loaded fine; it fails later only because no PBX listens (exit 1, not 2).
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let warnings = stderr
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("WARN"))
        .map(str::to_string)
        .collect();
    (warnings, stderr)
}

/// The example switched to Graph the way its comments say: backend = "graph", the EWS keys
/// commented out, the Graph keys commented in.
fn switched_to_graph(text: &str) -> String {
    let mut out = String::new();
    let mut section = "";
    for line in text.lines() {
        if line.starts_with("# --- ") {
            section = line;
        }
        let line = if line.starts_with("backend = ") {
            "backend = \"graph\"".to_string()
        } else if section.contains("backend = \"ews\"")
            && !line.starts_with('#')
            && line.contains(" = ")
        {
            format!("# {line}")
        } else if section.contains("oauth2") && is_key_line(line.strip_prefix("# ").unwrap_or("")) {
            line[2..].to_string()
        } else {
            line.to_string()
        };
        out.push_str(&line);
        out.push('\n');
        if line.starts_with('[') {
            section = "";
        }
    }
    out
}

fn is_key_line(line: &str) -> bool {
    line.split_once(" = ").is_some_and(|(k, _)| {
        let k = k.trim_end();
        !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    })
}

#[test]
fn the_example_config_loads_without_warnings() {
    let text = repo_file("package/config.example.toml");
    let dir = std::env::temp_dir().join(format!("ess-docs-{}", std::process::id()));
    let (warnings, stderr) = warnings_of(&installed_example(&dir.join("ews"), &text));
    assert!(warnings.is_empty(), "as shipped:\n{stderr}");
    let graph = switched_to_graph(&text);
    assert!(graph.contains("\nbackend = \"graph\"\n") && graph.contains("\n# auth = "));
    assert!(graph.contains("\nclient_secret_file = "), "{graph}");
    let (warnings, stderr) = warnings_of(&installed_example(&dir.join("graph"), &graph));
    assert!(warnings.is_empty(), "switched to Graph:\n{stderr}\n{graph}");
    let _ = fs::remove_dir_all(&dir);
}
