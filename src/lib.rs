//! exchange-status-sync: makes a STARFACE PBX follow its users' Exchange calendars.
//!
//! See ARCHITECTURE.md for the map of this crate.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod exchange;
pub mod http;
pub mod json;
pub mod logging;
pub mod model;
pub mod pbx;
pub mod reconcile;
pub mod rules;
pub mod starface;
pub mod state;
pub mod sync;
pub mod time;
pub mod xml;
