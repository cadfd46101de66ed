//! Compiles `proto/swarmr/*.proto` with protox (pure Rust, no `protoc` needed).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/swarmr/objects.proto",
        "proto/swarmr/control.proto",
        "proto/swarmr/raft.proto",
        "proto/swarmr/dispatcher.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={file}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .out_dir(out)
        // The objects travel inside Raft entries, which openraft serializes with serde.
        .type_attribute(".swarmr", "#[derive(serde::Serialize, serde::Deserialize)]")
        .compile_fds(fds)?;
    Ok(())
}
