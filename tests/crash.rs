//! Runs every crash case in `scripts/crash/`: scripts that must make lugo
//! die with a given exit status and a given report on stderr.
//!
//! A case is `NAME.lua` with `NAME.expected` next to it. The format of
//! `NAME.expected`:
//!
//! ```text
//! exit N              first line: the exit status lugo must end with
//! pattern             each further line is a pattern that must match a
//! ...                 whole line of stderr; the patterns match lines in
//!                     order, and other stderr lines may come between them
//! ```
//!
//! In a pattern, `*` matches any run of characters (possibly empty); every
//! other character matches itself. A pattern that starts with `^` is
//! anchored: the `^` is not part of the pattern, and the line it matches
//! must be the stderr line right after the one the previous pattern matched
//! (for the first pattern: the first line of stderr). So `^` alone is "the
//! next line is blank". A case with no pattern line only checks the status.
//!
//! A `NAME.expected` without `NAME.lua` is an error, except when `NAME`
//! starts with `missing_`: such a case checks how lugo reports a script file
//! that does not exist.
//!
//! Each case runs with `lugo scripts/crash/NAME.lua` from the workspace
//! root, once with the default number of Ps and once with `--procs 1`, and
//! is killed (and fails) after the time limit. All failures are reported
//! together. `LUGO_TEST_FILTER=name` runs only the cases whose name
//! contains `name`.

mod common;

use common::{assert_no_failures, files_with_ext, filtered, lugo, root, run, run_all, TIMEOUT};
use std::path::{Path, PathBuf};

const DIR: &str = "scripts/crash";

struct Expected {
    exit: i32,
    patterns: Vec<Pattern>,
}

struct Pattern {
    anchored: bool,
    text: String,
}

fn parse_expected(path: &Path) -> Result<Expected, String> {
    let text = std::fs::read_to_string(root().join(path))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let exit = first
        .strip_prefix("exit ")
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| {
            format!(
                "{}: first line must be `exit N`, got {first:?}",
                path.display()
            )
        })?;
    let patterns = lines
        .map(|line| match line.strip_prefix('^') {
            Some(rest) => Pattern {
                anchored: true,
                text: rest.to_string(),
            },
            None => Pattern {
                anchored: false,
                text: line.to_string(),
            },
        })
        .collect();
    Ok(Expected { exit, patterns })
}

/// Whether `line` matches `pattern` as a whole, `*` matching any run.
fn glob(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty(); // no `*` at all
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Match `patterns` against `lines` from line `start` on, trying every
/// choice of line for unanchored patterns. On failure, returns the index of
/// the furthest pattern that could not be matched.
fn match_lines(patterns: &[Pattern], lines: &[&str], start: usize) -> Result<(), usize> {
    let Some((p, rest)) = patterns.split_first() else {
        return Ok(());
    };
    let candidates = if p.anchored {
        start..(start + 1).min(lines.len())
    } else {
        start..lines.len()
    };
    let mut furthest = 0;
    for i in candidates {
        if glob(&p.text, lines[i]) {
            match match_lines(rest, lines, i + 1) {
                Ok(()) => return Ok(()),
                Err(k) => furthest = furthest.max(k + 1),
            }
        }
    }
    Err(furthest)
}

struct Case {
    name: String,
    script: PathBuf,
    expected: PathBuf,
    args: &'static [&'static str],
}

fn check(case: &Case) -> Result<(), String> {
    let expected = parse_expected(&case.expected)?;
    let out = run(lugo().args(case.args).arg(&case.script), None, TIMEOUT);
    let mut problems = Vec::new();
    if out.timed_out() {
        problems.push("did not end within the time limit".to_string());
    } else if out.code() != Some(expected.exit) {
        problems.push(format!(
            "exit status {:?}, expected {}",
            out.code(),
            expected.exit
        ));
    }
    let lines: Vec<&str> = out.stderr.lines().collect();
    if let Err(k) = match_lines(&expected.patterns, &lines, 0) {
        let p = &expected.patterns[k];
        problems.push(format!(
            "stderr does not match pattern line {} `{}{}` (the lines before it matched)",
            k + 2,
            if p.anchored { "^" } else { "" },
            p.text
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    let mut cmdline = vec!["lugo".to_string()];
    cmdline.extend(case.args.iter().map(|a| a.to_string()));
    cmdline.push(case.script.display().to_string());
    Err(format!(
        "--- {} ({}) ---\n{}\n{}",
        case.name,
        cmdline.join(" "),
        problems.join("\n"),
        out.describe()
    ))
}

#[test]
fn crash_cases() {
    let expected = files_with_ext(DIR, "expected");
    let scripts = files_with_ext(DIR, "lua");
    assert!(!expected.is_empty(), "no cases in {DIR}");
    let mut problems = Vec::new();
    for script in &scripts {
        if !expected.contains(&script.with_extension("expected")) {
            problems.push(format!("{} has no .expected file", script.display()));
        }
    }
    let mut cases = Vec::new();
    for exp in &expected {
        let name = exp
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let script = exp.with_extension("lua");
        if !scripts.contains(&script) && !name.starts_with("missing_") {
            problems.push(format!("{} has no .lua script", exp.display()));
            continue;
        }
        for args in [&[][..], &["--procs", "1"][..]] {
            cases.push(Case {
                name: name.clone(),
                script: script.clone(),
                expected: exp.clone(),
                args,
            });
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let cases = filtered(cases, |c| c.name.clone());
    let failures = run_all(&cases, check);
    assert_no_failures("crash runs", cases.len(), &failures);
}

#[test]
fn glob_patterns() {
    assert!(glob("abc", "abc"));
    assert!(!glob("abc", "abcd"));
    assert!(!glob("abc", "xabc"));
    assert!(glob("", ""));
    assert!(!glob("", "x"));
    assert!(glob("*", ""));
    assert!(glob("*", "anything"));
    assert!(glob("panic: *boom", "panic: x.lua:3: boom"));
    assert!(!glob("panic: *boom", "panic: x.lua:3: boom!"));
    assert!(glob("goroutine * [running]:", "goroutine 12 [running]:"));
    assert!(glob("a*b*c", "a-b-b-c"));
    assert!(glob("a*a", "aa"));
    assert!(!glob("a*a", "a"));
    assert!(glob("*x*", "x"));
    assert!(glob("[select*]:", "[select (no cases)]:"));
}

#[test]
fn line_matching() {
    let pat = |s: &str| match s.strip_prefix('^') {
        Some(r) => Pattern {
            anchored: true,
            text: r.to_string(),
        },
        None => Pattern {
            anchored: false,
            text: s.to_string(),
        },
    };
    let pats = |v: &[&str]| v.iter().map(|s| pat(s)).collect::<Vec<_>>();
    let lines = ["panic: boom", "", "goroutine 1 [running]:", "trace", "more"];
    assert!(match_lines(
        &pats(&["^panic: *", "^", "^goroutine 1 [running]:"]),
        &lines,
        0
    )
    .is_ok());
    assert!(match_lines(&pats(&["trace", "more"]), &lines, 0).is_ok());
    assert!(match_lines(&pats(&[]), &lines, 0).is_ok());
    assert_eq!(match_lines(&pats(&["^", "panic: *"]), &lines, 0), Err(0));
    assert_eq!(match_lines(&pats(&["more", "trace"]), &lines, 0), Err(1));
    assert_eq!(
        match_lines(&pats(&["^panic: *", "^goroutine*"]), &lines, 0),
        Err(1)
    );
    // an unanchored pattern may skip a line that would make the next anchored one fail
    let lines = ["a", "x", "a", "b"];
    assert!(match_lines(&pats(&["a", "^b"]), &lines, 0).is_ok());
    assert_eq!(match_lines(&pats(&["x"]), &[], 0), Err(0));
    assert_eq!(match_lines(&pats(&["^x"]), &[], 0), Err(0));
}
