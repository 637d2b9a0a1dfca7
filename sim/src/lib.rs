//! Simulated Exchange (EWS, Graph) and STARFACE (REST, XML-RPC) servers for the tests, the
//! benchmarks and the demo of exchange-status-sync. Never linked into the product.

pub mod calendar;
pub mod ews;
pub mod graph;
pub mod ntlm;
pub mod server;
pub mod starface;
pub mod token;
