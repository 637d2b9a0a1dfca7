//! The STARFACE side: REST (directory, DND, call forwarding) and the XML-RPC chat call.
//!
//! Pure parts — secrets (`auth`), number classification (`numbers`), the REST objects as views
//! over `crate::json::Value` that keep unknown fields (`objects`) and the XML-RPC call
//! (`xmlrpc`) — are tested without a network; `rest` is the session that sends them.

pub mod auth;
pub(crate) mod error;
pub mod numbers;
pub mod objects;
pub(crate) mod rest;
pub(crate) mod xmlrpc;

pub use crate::json::{JsonError, Value};
pub use error::StarfaceError;
pub use numbers::{NumberIndex, NumberKind, UserId};
pub use objects::{Directory, DirectoryUser, Forwarding, PhoneConfig};
pub use rest::{Starface, TOKEN_MAX_AGE};
