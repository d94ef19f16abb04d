//! The official Lua 5.4.8 test suite (its `testes/` folder), run in
//! portable mode (`_port=true; _soft=true`) four ways:
//!
//! - **plain**: `lugo --plain`, a plain Lua state of lugo's own Lua build
//!   with none of lugo's code: the baseline;
//! - **main**: as lugo's main chunk (`lugo file.lua`);
//! - **goroutine**: `dofile` inside a goroutine started with `go`;
//! - **actor**: `dofile` inside an actor of its own.
//!
//! Every file that passes on the baseline must pass the three other ways.
//! A file that fails on the baseline is listed in [`BASELINE_FAILS`] with
//! its reason (none today). Files that need the C test library `T` skip
//! those parts themselves; `all.lua` only runs the others, and `heavy.lua`
//! takes minutes (the suite's own `all.lua` leaves it out too).
//!
//! The suite is read from `../shared/lua-5.4.8-tests` (where CI has it)
//! or from the copy in `tests/lua-5.4.8-tests` (a fresh clone), and copied
//! to a temporary folder first: some files write beside themselves. When
//! both exist they must be the same. `LUGO_TEST_FILTER=coroutine` runs one
//! file.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{assert_no_failures, filtered, lugo, run, run_all};

/// Files that fail on the baseline, with the reason.
const BASELINE_FAILS: &[(&str, &str)] = &[];

/// Files not run, with the reason.
const SKIPPED: &[(&str, &str)] = &[
    (
        "all.lua",
        "runs the other files: each is run here on its own",
    ),
    (
        "heavy.lua",
        "takes minutes; the suite's all.lua leaves it out too",
    ),
];

const LIMIT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug)]
enum Way {
    Plain,
    Main,
    Goroutine,
    Actor,
}

struct Job {
    file: String,
    way: Way,
}

/// The suite's folder: the shared copy CI has, or the repository's.
fn suite_source() -> PathBuf {
    let root = common::root();
    let shared = root.join("../shared/lua-5.4.8-tests");
    let own = root.join("tests/lua-5.4.8-tests");
    if shared.is_dir() {
        assert_same_tree(&shared, &own);
        shared
    } else {
        own
    }
}

/// The repository's copy must not drift from the shared one.
fn assert_same_tree(a: &Path, b: &Path) {
    for entry in std::fs::read_dir(a).expect("read the suite") {
        let entry = entry.expect("suite entry");
        let (pa, pb) = (entry.path(), b.join(entry.file_name()));
        if pa.is_dir() {
            assert_same_tree(&pa, &pb);
        } else {
            let same = std::fs::read(&pa).ok() == std::fs::read(&pb).ok();
            assert!(same, "{} differs from {}", pb.display(), pa.display());
        }
    }
}

/// A writable copy of the suite.
fn suite_copy() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lua-5.4.8-tests");
    let _ = std::fs::remove_dir_all(&dir);
    copy_tree(&suite_source(), &dir);
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("make the suite copy");
    for entry in std::fs::read_dir(from).expect("read the suite") {
        let entry = entry.expect("suite entry");
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy a suite file");
        }
    }
}

const PORTABLE: &str = "_port=true; _soft=true";

fn check(dir: &Path, job: &Job) -> Result<(), String> {
    let mut cmd = lugo();
    cmd.current_dir(dir);
    let f = &job.file;
    match job.way {
        Way::Plain => cmd.args(["--plain", "-e", PORTABLE, f]),
        Way::Main => cmd.args(["-e", PORTABLE, f]),
        Way::Goroutine => cmd.args([
            "-e",
            PORTABLE,
            "-e",
            &format!(
                "local done = chan(1) \
                 go(function() dofile({f:?}) done:send(true) end) \
                 done:recv()"
            ),
        ]),
        Way::Actor => cmd.args([
            "-e",
            &format!(
                "local ok, e = actor.spawn(function(f) \
                   _port = true _soft = true dofile(f) \
                 end, {f:?}):wait() \
                 if not ok then io.stderr:write(e, '\\n') os.exit(1) end"
            ),
        ]),
    };
    let out = run(&mut cmd, None, LIMIT);
    if out.code() == Some(0) {
        return Ok(());
    }
    Err(format!("--- {f} ({:?}) ---\n{}", job.way, out.describe()))
}

#[test]
fn the_official_suite_passes_as_on_plain_lua() {
    let dir = suite_copy();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("read the suite copy")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".lua"))
        .filter(|n| !SKIPPED.iter().any(|(s, _)| s == n))
        .collect();
    files.sort();
    assert!(files.len() >= 28, "the suite has its files: {files:?}");
    let files = filtered(files, |f| f.clone());
    let jobs: Vec<Job> = files
        .iter()
        .flat_map(|f| {
            let ways: &[Way] = if BASELINE_FAILS.iter().any(|(b, _)| b == f) {
                &[Way::Plain]
            } else {
                &[Way::Plain, Way::Main, Way::Goroutine, Way::Actor]
            };
            ways.iter().map(|&way| Job {
                file: f.clone(),
                way,
            })
        })
        .collect();
    let failures = run_all(&jobs, |j| {
        let r = check(&dir, j);
        match (j.way, BASELINE_FAILS.iter().find(|(b, _)| *b == j.file)) {
            // A listed baseline failure must still fail there, or be
            // taken off the list.
            (Way::Plain, Some((_, why))) if r.is_ok() => Err(format!(
                "--- {} passes on the baseline now: take it off BASELINE_FAILS ({why})",
                j.file
            )),
            (Way::Plain, Some(_)) => Ok(()),
            _ => r,
        }
    });
    assert_no_failures("Lua suite runs", jobs.len(), &failures);
}
