//! Embeds the git revision for `--version`: `ESS_GIT_REVISION` from the environment if set
//! (release builds in containers without the repository), else `git rev-parse`, else
//! "unknown".
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=ESS_GIT_REVISION");
    let rev = std::env::var("ESS_GIT_REVISION")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=ESS_GIT_REVISION={rev}");
    // Rebuild when HEAD moves. In a worktree `.git` is a file, so ask git where HEAD lives
    // rather than watching a path that does not exist (which would rebuild every time).
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(refs) = git(&["rev-parse", "--git-path", "refs/heads"]) {
        println!("cargo:rerun-if-changed={refs}");
    }
}
