fn main() {
    println!(
        "exchange-status-sync {} ({})",
        env!("CARGO_PKG_VERSION"),
        env!("ESS_GIT_REVISION")
    );
}
