//! Runs every `scripts/conformance/*.lua` with the real `lugo` binary.
//!
//! A conformance script checks itself with `assert` and prints `ok` as the
//! last line of its stdout when every check passed. Each script runs twice:
//! with the default number of Ps and with `--procs 1`. A run passes when it
//! exits with status 0 within the time limit and its last stdout line is
//! `ok`. All failures are reported together.
//!
//! Only the scripts directly in `scripts/conformance/` run: `lib/` holds
//! modules that `require.lua` loads, `pending/` holds scripts for features
//! that have not landed yet (move one up when its feature lands).
//!
//! `LUGO_TEST_FILTER=name` runs only the scripts whose path contains `name`.

mod common;

use common::{assert_no_failures, files_with_ext, filtered, lugo, run, run_all, TIMEOUT};
use std::path::PathBuf;

struct Job {
    script: PathBuf,
    args: &'static [&'static str],
}

fn check(job: &Job) -> Result<(), String> {
    let out = run(lugo().args(job.args).arg(&job.script), None, TIMEOUT);
    if out.code() == Some(0) && out.last_stdout_line() == Some("ok") {
        return Ok(());
    }
    let mut cmdline = vec!["lugo".to_string()];
    cmdline.extend(job.args.iter().map(|a| a.to_string()));
    cmdline.push(job.script.display().to_string());
    Err(format!("--- {} ---\n{}", cmdline.join(" "), out.describe()))
}

#[test]
fn conformance_scripts() {
    let scripts = files_with_ext("scripts/conformance", "lua");
    assert!(!scripts.is_empty(), "no scripts in scripts/conformance");
    let scripts = filtered(scripts, |p| p.display().to_string());
    let jobs: Vec<Job> = scripts
        .iter()
        .flat_map(|script| {
            [&[][..], &["--procs", "1"][..]].map(|args| Job {
                script: script.clone(),
                args,
            })
        })
        .collect();
    let failures = run_all(&jobs, check);
    assert_no_failures("conformance runs", jobs.len(), &failures);
}
