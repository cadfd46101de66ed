//! Compiles the socket load balancer's BPF programs (`bpf/socklb.c`) with Debian's clang;
//! the object is embedded in the crate and loaded at run time with aya.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "bpf/socklb.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("socklb.o");
    // Debian keeps <asm/types.h>, which <linux/bpf.h> needs, under the multiarch directory.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let status = Command::new(&clang)
        .args([
            "-target", "bpf", "-O2", "-g", "-mcpu=v3", "-Wall", "-Werror",
        ])
        .arg("-I")
        .arg(&multiarch)
        .args(["-c", src, "-o"])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{clang} failed on {src} ({s}): see its errors above"),
        Err(e) => panic!(
            "cannot run {clang} ({e}): building swarmr's BPF socket load balancer needs clang \
             and libbpf-dev (bash deploy/prereqs.sh installs them)"
        ),
    }
}
