//! `help()`: what lugo adds to Lua, read from the API reference itself
//! (`docs/api.md`, built in): its tables' rows, a call and what it does.
//! `help()` lists the sections and the names each documents; `help(f)`
//! or `help("name")` prints the rows of one function, `help(module)` those
//! of its section. The reference is the one place it is written.

use mlua::{Lua, Value};

/// The API reference, as the project keeps it.
const API: &str = include_str!("../../docs/api.md");

/// One row of the reference: the calls of its first cell, what it says.
#[derive(Debug, PartialEq)]
struct Row {
    section: String,
    calls: Vec<String>,
    text: String,
}

/// The name a call is known by: `time.after` of `time.after(d)`, `ch:send`
/// of `ch:send(v)`, `for` rows by the method they use.
fn name_of(call: &str) -> &str {
    let call = call.strip_prefix("for v in ").unwrap_or(call);
    let end = call.find(['(', ' ', '[']).unwrap_or(call.len());
    &call[..end]
}

/// The spans between backticks of `cell`.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Every row of the reference's tables whose first cell is code, with the
/// top-level section (`## `) it is in.
fn rows(doc: &str) -> Vec<Row> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            section = h.trim().to_string();
            continue;
        }
        let Some(rest) = line.strip_prefix("| `") else {
            continue;
        };
        let rest = format!("`{rest}");
        // Cells: split on " | " (the text may hold `|` inside code, rarely).
        let mut cells = rest.trim_end_matches('|').splitn(2, " | ");
        let (Some(first), Some(text)) = (cells.next(), cells.next()) else {
            continue;
        };
        let calls = code_spans(first);
        if calls.is_empty() {
            continue;
        }
        out.push(Row {
            section: section.clone(),
            calls,
            text: text.trim().trim_end_matches('|').trim().replace('`', ""),
        });
    }
    out
}

/// The section a module's rows are in.
fn section_of(module: &str) -> Option<&'static str> {
    Some(match module {
        "runtime" => "Goroutines",
        "chan" => "Channels",
        "time" => "Time",
        "context" => "Context",
        "sync" => "Sync",
        "net" => "Network",
        "actor" => "Actors",
        _ => return None,
    })
}

/// `help()`: the sections and the names each documents.
fn overview(rows: &[Row]) -> String {
    let mut out = String::from(
        "lugo adds to Lua 5.4 (help(f), help(\"name\") or help(module) for more;\n\
         the whole reference: docs/api.md):\n",
    );
    let mut sections: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in rows {
        if sections.last().is_none_or(|(s, _)| *s != r.section) {
            sections.push((&r.section, Vec::new()));
        }
        let names = &mut sections.last_mut().expect("pushed").1;
        for c in &r.calls {
            let n = name_of(c);
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    for (section, names) in sections {
        let mut line = format!("  {section:<12}");
        for (i, n) in names.iter().enumerate() {
            let piece = if i == 0 {
                n.to_string()
            } else {
                format!(", {n}")
            };
            if line.len() + piece.len() > 78 {
                out.push_str(line.trim_end_matches(' '));
                out.push_str(",\n");
                line = format!("  {:<12}{n}", "");
            } else {
                line.push_str(&piece);
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The rows of the calls named `name`, or of module `name`'s section.
fn about(rows: &[Row], name: &str) -> String {
    let section = section_of(name);
    let mut out = String::new();
    for r in rows {
        let hit =
            r.calls.iter().any(|c| name_of(c) == name) || section.is_some_and(|s| s == r.section);
        if hit {
            out.push_str(&format!("{}\n    {}\n", r.calls.join(", "), r.text));
        }
    }
    if out.is_empty() {
        out = format!("help: nothing is documented as {name:?}\n");
    }
    out
}

/// The name `v` has in the globals or in a module table of them
/// (`time.after`, `chan`), if any.
fn name_in_globals(lua: &Lua, v: &Value) -> mlua::Result<Option<String>> {
    let same = |a: &Value| a.to_pointer() == v.to_pointer() && a.type_name() == v.type_name();
    let globals = lua.globals();
    for pair in globals.pairs::<Value, Value>() {
        let (k, g) = pair?;
        let Value::String(k) = k else { continue };
        if same(&g) {
            return Ok(Some(k.to_string_lossy()));
        }
    }
    for pair in globals.pairs::<Value, Value>() {
        let (k, g) = pair?;
        let (Value::String(k), Value::Table(t)) = (k, g) else {
            continue;
        };
        if section_of(&k.to_string_lossy()).is_none() {
            continue;
        }
        for field in t.pairs::<Value, Value>() {
            let (f, fv) = field?;
            if let Value::String(f) = f {
                if same(&fv) {
                    return Ok(Some(format!(
                        "{}.{}",
                        k.to_string_lossy(),
                        f.to_string_lossy()
                    )));
                }
            }
        }
    }
    Ok(None)
}

/// `help([what])`, the text to print.
pub fn help(lua: &Lua, what: Value) -> mlua::Result<String> {
    let rows = rows(API);
    Ok(match &what {
        Value::Nil => overview(&rows),
        Value::String(s) => about(&rows, &s.to_string_lossy()),
        v if v.to_pointer().is_null() => {
            format!(
                "help: give a function, a module or a name, not a {}\n",
                v.type_name()
            )
        }
        v => match name_in_globals(lua, v)? {
            Some(name) => about(&rows, &name),
            None => "help: not one of lugo's (Lua's own functions: the Lua 5.4 manual)\n".into(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_from_the_reference() {
        let doc = "## Time\n\n| call | meaning |\n|---|---|\n| `time.after(d)` | channel that receives the time once after `d` |\n| `ch:len()`, `ch:cap()` | counts |\n";
        let r = rows(doc);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].section, "Time");
        assert_eq!(r[0].calls, vec!["time.after(d)"]);
        assert_eq!(r[0].text, "channel that receives the time once after d");
        assert_eq!(r[1].calls, vec!["ch:len()", "ch:cap()"]);
        assert_eq!(name_of("for v in ch:range() do ... end"), "ch:range");
        assert_eq!(name_of("go(f, ...)"), "go");
    }

    #[test]
    fn the_real_reference_documents_the_modules() {
        let r = rows(API);
        let text = about(&r, "time.after");
        assert!(text.starts_with("time.after(d)\n    "), "{text}");
        assert!(about(&r, "chan").contains("ch:send(v)"));
        assert!(about(&r, "nothing.here").starts_with("help: nothing"));
        let all = overview(&r);
        for s in [
            "Goroutines",
            "Channels",
            "Time",
            "Context",
            "Sync",
            "Network",
            "Actors",
        ] {
            assert!(all.contains(s), "{all}");
        }
    }
}
