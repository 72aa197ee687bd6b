//! The `enlace.v1` wire protocol: generated protobuf messages and gRPC services.
//!
//! The normative description is `docs/protocol.md`. Types generated here stop at
//! the service edge: `enlace-node` turns them into domain types with `TryFrom`.

#![allow(missing_docs, unreachable_pub)] // generated code carries the .proto comments only
#![allow(clippy::all)]

/// Package `enlace.v1`.
pub mod v1 {
    tonic::include_proto!("enlace.v1");
}

/// Encoded `FileDescriptorSet` of every Enlace proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/enlace_descriptor.bin"));
