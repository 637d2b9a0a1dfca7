//! `ess-sim`: runs the simulated servers from the command line (demo, benchmarks).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--help") | Some("-h") | None => {
            println!("usage: ess-sim <command>\n\ncommands:\n  (none yet)");
        }
        Some("starface") => std::process::exit(ess_sim::starface::run_cli(&args[1..])),
        Some("graph") => std::process::exit(ess_sim::graph::run_cli(&args[1..])),
        Some(other) => {
            eprintln!("ess-sim: unknown command '{other}' (see --help)");
            std::process::exit(2);
        }
    }
}
