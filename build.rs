//! Build script of the `lugo` package.
//!
//! 1. The `lugo` binary exports its symbols (`-rdynamic`, as `lua.c` links
//!    with `-Wl,-E`): C modules (`require "lpeg"`) link against no Lua
//!    library and find the Lua C API in the program that loads them.
//! 2. For the tests, a tiny C module (`tests/fixtures/cmod.c`) is built
//!    into `$OUT_DIR/cmodules/cmod.so` with the system C compiler, so that
//!    loading C modules is tested on a machine without Debian's Lua
//!    modules; `LUGO_TEST_CMOD_DIR` tells the tests where (empty when no
//!    compiler could build it; the test then says so and fails).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rustc-link-arg-bins=-rdynamic");
    println!("cargo:rerun-if-changed=tests/fixtures/cmod.c");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("cmodules");
    let _ = std::fs::create_dir_all(&out);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let built = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(out.join("cmod.so"))
        .arg("tests/fixtures/cmod.c")
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        println!("cargo:warning=cannot build tests/fixtures/cmod.c with {cc}: the C module tests will fail");
    }
    let dir = if built {
        out.display().to_string()
    } else {
        String::new()
    };
    println!("cargo:rustc-env=LUGO_TEST_CMOD_DIR={dir}");
}
