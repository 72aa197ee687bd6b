//! The gRPC edge: thin handlers that turn wire messages into calls on [`crate::Node`].

pub mod admin;
pub mod exchange;
