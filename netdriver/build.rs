//! Compiles swarmr's BPF programs with Debian's clang: the socket load balancer
//! (`bpf/socklb.c`) and the overlay fast path (`bpf/l2fwd.c`); the objects are embedded
//! in the crate and loaded at run time with aya.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const PROGRAMS: [&str; 2] = ["socklb", "l2fwd"];

fn main() {
    println!("cargo:rerun-if-env-changed=CLANG");
    // Debian keeps <asm/types.h>, which <linux/bpf.h> needs, under the multiarch directory.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    for name in PROGRAMS {
        let src = format!("bpf/{name}.c");
        println!("cargo:rerun-if-changed={src}");
        let status = Command::new(&clang)
            .args([
                "-target", "bpf", "-O2", "-g", "-mcpu=v3", "-Wall", "-Werror",
            ])
            .arg("-I")
            .arg(&multiarch)
            .args(["-c", &src, "-o"])
            .arg(out_dir.join(format!("{name}.o")))
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("{clang} failed on {src} ({s}): see its errors above"),
            Err(e) => panic!(
                "cannot run {clang} ({e}): building swarmr's BPF programs needs clang and \
                 libbpf-dev (bash deploy/prereqs.sh installs them)"
            ),
        }
    }
}
