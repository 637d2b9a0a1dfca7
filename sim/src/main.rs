//! `ess-sim`: the simulated servers from the command line, and the demo and the benchmark that
//! run the real product binary against them.

mod bench;
mod demo;
mod product;
mod serve;

const USAGE: &str = "\
usage: ess-sim <command> [options]

commands:
  demo       run the real daemon against simulated Exchange and STARFACE for about two
             minutes and show what it switches (--fast: about 30 s)
  bench      measure the performance budgets with the real binary (2,000 users: EWS
             requests per poll, idle PBX writes and reads, CPU per poll, memory over many
             polls, boundary latency, binary size); README.md lists the budgets
  starface   serve a simulated STARFACE (REST and XML-RPC) with demo users; login 0001,
             password admin-secret; prints every write
  ews        serve a simulated Exchange (EWS, Basic auth) with demo calendars; user
             svc-starface@example.com, password exchange-secret
  graph      serve a simulated Microsoft Graph and its token endpoint with demo calendars;
             client secret demo-client-secret
  help       this text

`ess-sim <command> --help` describes a command's options.";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or(&[]);
    let code = match args.first().map(String::as_str) {
        Some("--help") | Some("-h") | Some("help") | None => {
            println!("{USAGE}");
            0
        }
        Some("demo") => demo::run_cli(rest),
        Some("bench") => bench::run_cli(rest),
        Some("starface") => serve::starface(rest),
        Some("ews") => serve::ews(rest),
        Some("graph") => serve::graph(rest),
        Some(other) => {
            eprintln!("ess-sim: unknown command '{other}' (see --help)");
            2
        }
    };
    std::process::exit(code);
}
