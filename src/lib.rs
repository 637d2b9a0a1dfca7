//! exchange-status-sync: makes a STARFACE PBX follow its users' Exchange calendars.
//!
//! See ARCHITECTURE.md for the map of this crate.

mod cli;
pub mod cmd;
pub mod config;
pub mod exchange;
pub mod explain;
pub mod http;
pub mod json;
mod logging;
pub mod model;
mod pbx;
mod reconcile;
mod rules;
pub mod starface;
mod state;
mod sync;
pub mod time;
pub mod xml;
