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

use enlace_tests::{Federation, Running};

/// MEX and COL, each with an investigation agreement with GTM (a peer that
/// misbehaves and a bystander, or two requesters of the same holder).
async fn two_peers_of_gtm() -> Running {
    Federation::new()
        .node("MEX")
        .node("GTM")
        .node("COL")
        .agreement("MEX", "GTM", &["investigation"])
        .agreement("COL", "GTM", &["investigation"])
        .start()
        .await
        .unwrap()
}
