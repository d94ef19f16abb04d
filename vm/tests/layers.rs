//! The layers of `lugo-vm` (the map at the top of `src/lib.rs`): each
//! module of `src/` has a rank, and may name only modules of a lower rank
//! (`use crate::x`, or a path `crate::x::...` in its code). A module that
//! names one above it, or the crate root's re-export (`crate::Actor`),
//! or a new module without a rank, fails this test.
//! Comments and `#[cfg(test)]` code are not read (a unit test may reach
//! anything).

use std::collections::BTreeMap;
use std::path::Path;

/// Rank of each module, bottom first; see `src/lib.rs`.
const RANKS: &[(&str, u32)] = &[
    // base: leaves, nothing of the crate
    ("clock", 0),
    ("mem", 0),
    ("gc", 0),
    ("park", 0),
    ("profile", 0),
    ("lockrank", 0),
    // the hooks that preempt, stop and sample (a sample goes to `profile`)
    ("preempt", 1),
    // values
    ("portable", 1),
    ("census", 1),
    ("wake", 2),
    // the Lua boundary; the trace's records (what Ms did, of `wake`'s reasons)
    ("ffi", 3),
    ("trace", 3),
    // records
    ("g", 4),
    ("actor", 5),
    // wait objects
    ("chan", 6),
    ("sema", 6),
    ("host", 7),
    ("select", 7),
    ("timer", 7),
    ("netpoll", 8),
    // an actor's side of a leak check
    ("leak", 8),
    // the scheduler
    ("sched", 9),
    // the embedder's face
    ("endpoint", 10),
];

/// The module a file of `src/` belongs to: `sched/m.rs` to `sched`.
fn module_of(rel: &Path) -> String {
    let first = rel.components().next().expect("a path");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

/// The source without comments and without the items marked
/// `#[cfg(test)]` (up to the brace that closes each).
fn code_of(src: &str) -> String {
    let mut code: String = src
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    while let Some(at) = code.find("#[cfg(test)]") {
        let mut depth = 0;
        let mut end = code.len();
        for (i, c) in code[at..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = at + i + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = at + i + 1;
                    break;
                }
                _ => {}
            }
        }
        code.replace_range(at..end, "");
    }
    code
}

/// The crate's modules that `code` names: `crate::x` paths and the
/// names inside `use crate::{x, y::z}`.
fn named_modules(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::c, d::{e, f}}`: the names at depth 0.
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        out.push(ident(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_import_runs_down_the_layers() {
    let ranks: BTreeMap<&str, u32> = RANKS.iter().copied().collect();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let module = module_of(rel);
        if module == "lib" {
            continue; // the crate root names every module
        }
        let Some(&rank) = ranks.get(module.as_str()) else {
            wrong.push(format!("{}: module `{module}` has no rank", rel.display()));
            continue;
        };
        let code = code_of(&std::fs::read_to_string(file).expect("read a file"));
        for named in named_modules(&code) {
            if named == module {
                continue;
            }
            if named.starts_with(char::is_uppercase) {
                // A re-export of the crate root hides its layer.
                wrong.push(format!(
                    "{}: `{module}` names `crate::{named}`: name its module",
                    rel.display()
                ));
                continue;
            }
            match ranks.get(named.as_str()) {
                Some(&r) if r < rank => {}
                Some(&r) => wrong.push(format!(
                    "{}: `{module}` (rank {rank}) names `{named}` (rank {r})",
                    rel.display()
                )),
                None => wrong.push(format!(
                    "{}: `{module}` names `{named}`, which has no rank",
                    rel.display()
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that run up:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn test_code_is_not_read_but_what_follows_it_is() {
    let code = code_of("#[cfg(test)]\nmod tests { use crate::a; }\nuse crate::b; // crate::c");
    assert_eq!(named_modules(&code), ["b"]);
}

#[test]
fn the_reader_sees_grouped_and_inline_paths() {
    let code = "use crate::{a, b::c, d::{e, f}};\nfn x() { crate::g::h(); }";
    assert_eq!(named_modules(code), ["a", "b", "d", "g"]);
}
