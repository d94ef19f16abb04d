//! C modules load (issue "Faithful Lua", item 4): `lugo` exports the Lua C
//! API, as `lua.c` does, so a module that links against no Lua library
//! finds it in the program. Tested with a tiny module built by build.rs
//! (`tests/fixtures/cmod.c`), everywhere, and with Debian's `lua-lpeg` and
//! `lua-cjson` where they are installed (CI installs them), found through
//! the default `package.cpath`, as Debian's `lua5.4` finds them.

mod common;

use std::path::Path;

use common::{lugo, run, TIMEOUT};

/// Where build.rs put `cmod.so`.
fn fixture_dir() -> &'static str {
    let dir = env!("LUGO_TEST_CMOD_DIR");
    assert!(
        !dir.is_empty(),
        "build.rs could not build tests/fixtures/cmod.c: is a C compiler (cc) installed?"
    );
    dir
}

fn lugo_ok(args: &[&str], cpath: Option<&str>) -> String {
    let mut cmd = lugo();
    cmd.args(args);
    if let Some(p) = cpath {
        cmd.env("LUA_CPATH", p);
    }
    let out = run(&mut cmd, None, TIMEOUT);
    assert_eq!(out.code(), Some(0), "{args:?}: {}", out.describe());
    out.stdout
}

#[test]
fn a_c_module_loads_in_the_main_actor_and_in_an_actor() {
    let cpath = format!("{}/?.so", fixture_dir());
    let out = lugo_ok(
        &[
            "-e",
            r#"
            local cmod = require "cmod"
            assert(cmod.add(2, 3) == 5 and cmod.what == "a C module")
            -- its errors are Lua errors
            local ok, err = pcall(cmod.add, "x", 1)
            assert(not ok and err:find("integers expected"), err)
            -- in a goroutine, and in an actor of its own
            local done = chan()
            go(function() done:send(require("cmod").add(40, 2)) end)
            assert(done:recv() == 42)
            assert(actor.spawn(function()
              assert(require("cmod").add(1, 1) == 2)
            end):wait())
            print("ok")
            "#,
        ],
        Some(&cpath),
    );
    assert_eq!(out, "ok\n");
}

#[test]
fn a_sandbox_refuses_c_modules() {
    let cpath = format!("{}/?.so", fixture_dir());
    let out = lugo_ok(
        &[
            "--sandbox",
            "-e",
            "local ok, err = pcall(require, 'cmod') print(ok, (err:gsub('\\n.*', '')))",
        ],
        Some(&cpath),
    );
    assert_eq!(out, "false\tmodule 'cmod' not found:\n");
}

#[test]
fn debian_lua_modules_load_through_the_default_cpath() {
    let dir = format!("/usr/lib/{}-linux-gnu/lua/5.4", std::env::consts::ARCH);
    let have = |m: &str| Path::new(&dir).join(format!("{m}.so")).exists();
    if !(have("lpeg") && have("cjson")) {
        // Not installed here (CI installs lua-lpeg and lua-cjson): the
        // fixture module above covers loading.
        eprintln!("lua-lpeg or lua-cjson is not installed: not checked here");
        return;
    }
    let out = lugo_ok(
        &[
            "-e",
            r#"
            local lpeg = require "lpeg"
            local digits = lpeg.C(lpeg.R"09"^1)
            assert(lpeg.match(digits, "2026 rest") == "2026")
            local cjson = require "cjson"
            local t = cjson.decode(cjson.encode({ a = { 1, 2, 3 }, b = "x" }))
            assert(t.a[3] == 3 and t.b == "x")
            assert(actor.spawn(function()
              assert(require("lpeg").match(require("lpeg").P"a"^1, "aa") == 3)
              assert(require("cjson").encode({ 1 }) == "[1]")
            end):wait())
            print("ok")
            "#,
        ],
        None,
    );
    assert_eq!(out, "ok\n");
}
