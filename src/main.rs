//! The binary: all of it lives in the library; `cli::main` maps every outcome to an exit code.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = ess::cli::main(&args);
    log::logger().flush();
    std::process::exit(code);
}
