//! Compiles the GoBGP API subset in `proto/` with a pure-Rust protobuf compiler,
//! so that building bgplb needs no `protoc` on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/gobgp.proto", "proto/attribute.proto"];
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_build::configure()
        .build_server(false)
        .compile_fds(descriptors)?;
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    Ok(())
}
