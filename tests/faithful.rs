//! Nothing of lugo is visible to a Lua program that plain Lua would not
//! show (issue "Faithful Lua", item 2): each script of `tests/faithful/`
//! prints what Lua shows of itself (tracebacks, `debug.getinfo`, error
//! objects and messages), and must print the same under `lugo` as under
//! `lugo --plain`, a plain state of the same Lua build with none of
//! lugo's code. Each script gets itself as stdin.

mod common;

use common::{files_with_ext, filtered, lugo, run, TIMEOUT};

#[test]
fn lua_shows_the_same_under_lugo_as_in_a_plain_state() {
    let scripts = filtered(files_with_ext("tests/faithful", "lua"), |p| {
        p.display().to_string()
    });
    assert!(scripts.len() >= 2, "the scripts are there");
    for script in scripts {
        let stdin = std::fs::read(common::root().join(&script)).expect("read the script");
        let plain = run(lugo().arg("--plain").arg(&script), Some(&stdin), TIMEOUT);
        let under = run(lugo().arg(&script), Some(&stdin), TIMEOUT);
        let name = script.display();
        assert_eq!(
            plain.code(),
            Some(0),
            "{name} (plain):\n{}",
            plain.describe()
        );
        assert_eq!(
            under.code(),
            Some(0),
            "{name} (lugo):\n{}",
            under.describe()
        );
        for (n, (p, u)) in plain.stdout.lines().zip(under.stdout.lines()).enumerate() {
            assert_eq!(
                u,
                p,
                "{name}: line {} differs (left: lugo, right: plain)",
                n + 1
            );
        }
        assert_eq!(
            under.stdout.lines().count(),
            plain.stdout.lines().count(),
            "{name}: as many lines"
        );
    }
}
