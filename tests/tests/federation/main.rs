//! Federation scenarios: real nodes, real mutual TLS, real signatures, a sled
//! directory per node. One test binary; modules by subject.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail the test by panicking

mod agreements;
mod at_rest;
mod audit;
mod cooperation;
mod fanout;
mod hostile;
mod peers;
mod rejections;
mod search;
mod statistics;
mod transparency;
mod transport;
