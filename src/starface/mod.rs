//! The STARFACE side: REST (directory, DND, call forwarding) and the XML-RPC chat call.
//!
//! Pure parts — secrets (`auth`), the JSON value type that keeps unknown fields (`json`), number
//! classification (`numbers`), the REST objects (`objects`) and the XML-RPC call (`xmlrpc`) —
//! are tested without a network; `rest` is the session that sends them.

pub mod auth;
pub mod error;
pub mod json;
pub mod numbers;
pub mod objects;
pub mod rest;
pub mod xmlrpc;

pub use error::StarfaceError;
pub use json::{JsonError, Value};
pub use numbers::{NumberIndex, NumberKind, UserId};
pub use objects::{Directory, DirectoryUser, Forwarding, PhoneConfig};
pub use rest::{Starface, TOKEN_MAX_AGE};
