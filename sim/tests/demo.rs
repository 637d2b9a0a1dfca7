//! `ess-sim demo --fast` end to end: the real daemon against the fakes, stopped with SIGTERM
//! after the last appointment. Takes about 30 seconds.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The product binary next to ess-sim (Cargo builds both into `target/<profile>/` when the
/// whole workspace is tested); built there on demand when only this package is tested.
fn product_binary(sim: &Path) -> PathBuf {
    let profile_dir = sim.parent().expect("ess-sim lives in target/<profile>/");
    let bin = profile_dir.join("exchange-status-sync");
    if !bin.is_file() {
        let target_dir = profile_dir.parent().expect("a target directory");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "-p",
                "exchange-status-sync",
                "--bin",
                "exchange-status-sync",
            ])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .env("CARGO_TARGET_DIR", target_dir)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the product failed");
    }
    bin
}

#[test]
fn fast_demo_switches_on_and_everything_back() {
    let sim = Path::new(env!("CARGO_BIN_EXE_ess-sim"));
    let product = product_binary(sim);
    let out = Command::new(sim)
        .arg("demo")
        .arg("--fast")
        .arg("--bin")
        .arg(&product)
        .output()
        .expect("ess-sim runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed ({})\n{stdout}\n{stderr}",
        out.status
    );
    for expected in [
        // Each kind of switch happened, through the real daemon, and was undone.
        "pbx | PUT /rest/users/1/phoneconfig doNotDisturb=true",
        "pbx | PUT /rest/users/1/phoneconfig doNotDisturb=false",
        "pbx | PUT /rest/redirects/ext-2?actOnBehalfOf=2 enabled=true",
        "pbx | PUT /rest/redirects/ext-2?actOnBehalfOf=2 enabled=false",
        "Chatpresence=DO_NOT_DISTURB ChatPresenceText=\"Private appointment\"",
        "the daemon stopped in",
        "summary: everything was switched back",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
    // The private subject never reaches the PBX, and carol's busy "(Keine Ruhe)" keeps DND
    // off: her only DND is the one of "Lunch (DND)".
    assert!(!stdout.contains("ChatPresenceText=\"Doctor"), "{stdout}");
    assert_eq!(
        stdout
            .matches("PUT /rest/users/3/phoneconfig doNotDisturb=true")
            .count(),
        1,
        "{stdout}"
    );
    assert!(!stdout.contains(" ERROR "), "{stdout}");
}
