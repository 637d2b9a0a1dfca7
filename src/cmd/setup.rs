//! Setting a command up and down: the configuration and logging, the clients built from the
//! configuration, and the logout at the end.

use std::path::Path;
use std::time::Duration;

use super::Failure;
use crate::config::{self, Backend, Config};
use crate::exchange::ews::EwsSource;
use crate::exchange::graph::GraphSource;
use crate::exchange::CalendarSource;
use crate::http::{Cutoff, HttpClient, HttpOptions};
use crate::logging;
use crate::starface::Starface;

/// The largest response we read from Exchange: a 100-mailbox availability answer with 20
/// appointments each is about 1 MB, so 8 MiB leaves room for busy calendars while keeping a
/// runaway or hostile server within the memory budget.
const EXCHANGE_MAX_BODY: usize = 8 * 1024 * 1024;
/// STARFACE answers are lists (users, numbers) of a few hundred bytes per entry.
const STARFACE_MAX_BODY: usize = 8 * 1024 * 1024;
const STARFACE_TIMEOUT: Duration = Duration::from_secs(30);

/// The PBX client and the calendar source.
pub struct Services {
    pub starface: Starface,
    pub source: Box<dyn CalendarSource + Send>,
}

impl Services {
    /// Builds the clients; does no network I/O. An error here is a configuration error (an
    /// unreadable `ca_file`). Both clients honour `cutoff` (the daemon's stop).
    pub fn new(config: &Config, cutoff: &Cutoff) -> Result<Services, String> {
        let exchange_http = HttpClient::new(&HttpOptions {
            timeout: config.exchange.timeout,
            max_body: EXCHANGE_MAX_BODY,
            ca_file: config.exchange.ca_file.clone(),
            insecure_tls: false,
        })
        .map_err(|e| format!("{}: exchange.ca_file: {e}", config.path.display()))?
        .with_cutoff(cutoff);
        let starface_http = HttpClient::new(&HttpOptions {
            timeout: STARFACE_TIMEOUT,
            max_body: STARFACE_MAX_BODY,
            ca_file: None,
            insecure_tls: config.starface.insecure_tls,
        })
        .map_err(|e| format!("{}: starface: {e}", config.path.display()))?
        .with_cutoff(cutoff);
        let starface =
            Starface::new(&config.starface, starface_http).with_rpc_method(&config.chat.rpc_method);
        let source: Box<dyn CalendarSource + Send> = match config.exchange.backend {
            Backend::Ews => Box::new(EwsSource::new(&config.exchange, exchange_http)),
            Backend::Graph => Box::new(GraphSource::new(&config.exchange, exchange_http)),
        };
        Ok(Services { starface, source })
    }
}

/// Loads and validates the configuration, then sets up logging from it: the first step of
/// every command.
pub fn load_config(path: &Path) -> Result<Config, Failure> {
    load_config_logging_to(path, true)
}

/// `load_config` for `status`: it logs to standard error whatever `log.file` says, since a
/// monitoring check reads its answer there and may run as a user who cannot write the log.
pub fn load_config_for_status(path: &Path) -> Result<Config, Failure> {
    load_config_logging_to(path, false)
}

fn load_config_logging_to(path: &Path, use_log_file: bool) -> Result<Config, Failure> {
    let loaded = config::load(path).map_err(|e| Failure::Config(e.to_string()))?;
    let cfg = loaded.config;
    let file = cfg.log.file.as_deref().filter(|_| use_log_file);
    logging::init(cfg.log.level, file)
        .map_err(|e| Failure::Config(format!("{}: log.file: {e}", cfg.path.display())))?;
    for w in &loaded.warnings {
        log::warn!("{w}");
    }
    Ok(cfg)
}

/// Logs out, if logged in; a failure only warns (the token expires by itself).
pub fn logout(starface: &mut Starface) {
    if let Err(e) = starface.logout() {
        log::warn!("logging out of STARFACE: {e}");
    }
}
