//! The binary: all of it lives in the library; `cmd::main` maps every outcome to an exit code.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = ess::cmd::main(&args);
    log::logger().flush();
    std::process::exit(code);
}
