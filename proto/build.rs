//! Compiles `proto/enlace/v1/*.proto` with protox (pure Rust, no `protoc`).

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=enlace");
    let files = [
        "enlace/v1/envelope.proto",
        "enlace/v1/exchange.proto",
        "enlace/v1/admin.proto",
    ];
    let fds = protox::compile(files, ["."])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("enlace_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
