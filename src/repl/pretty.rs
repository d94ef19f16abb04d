//! How the REPL shows a line's values: tables as their contents (nested,
//! keys sorted, cycles marked, cut at a depth, a width and a length),
//! lugo's own values as what they are (`chan(cap 0, len 0, open)`,
//! `actor 2 (running)`, a socket's addresses: `lugo_stdlib::describe`),
//! anything else as `tostring` shows it. A string on its own is shown as
//! it is, as `lua.c` does; inside a table it is quoted (and cut when long).
//!
//! Reading a table never runs the script's code: its entries are read raw
//! (`next`), and one with a metatable that names it (`__tostring`,
//! `__name`) is shown as `tostring` shows it.

use mlua::{Lua, Table, Value};

/// Nesting shown; deeper tables are `{...}`.
const MAX_DEPTH: usize = 3;
/// Entries shown per table; the rest are counted.
const MAX_ENTRIES: usize = 24;
/// Bytes of a string shown inside a table.
const MAX_STRING: usize = 60;
/// A table longer than this on one line is shown over several.
const LINE_WIDTH: usize = 80;

/// A value laid out: a word, or a table's entries.
enum Doc {
    Atom(String),
    Table {
        entries: Vec<(Option<String>, Doc)>,
        /// Entries left out past [`MAX_ENTRIES`].
        more: usize,
    },
}

/// How the REPL shows `v`, one of a line's values.
pub fn show(lua: &Lua, v: &Value) -> mlua::Result<Vec<u8>> {
    Ok(match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Table(_) => {
            let mut path = Vec::new();
            let doc = layout(lua, v, 0, &mut path)?;
            render(&doc, 0).into_bytes()
        }
        other => atom(lua, other)?.into_bytes(),
    })
}

/// `v` as one word (not a table to open).
fn atom(lua: &Lua, v: &Value) -> mlua::Result<String> {
    if let Some(d) = lugo_stdlib::describe(lua, v)? {
        return Ok(d);
    }
    Ok(match v {
        Value::Integer(_) | Value::Number(_) => match lua.coerce_string(v.clone())? {
            Some(s) => s.to_string_lossy(),
            None => v.to_string()?,
        },
        other => other.to_string()?,
    })
}

/// A string as a table shows it: quoted, cut when long.
fn quoted(bytes: &[u8]) -> String {
    let cut = bytes.len() > MAX_STRING;
    let shown = &bytes[..bytes.len().min(MAX_STRING)];
    let text = String::from_utf8_lossy(shown);
    let mut s = format!("{:?}", text.as_ref());
    if cut {
        s.pop();
        s.push_str(&format!("...\" ({} bytes)", bytes.len()));
    }
    s
}

/// Whether a table's metatable says how to show it.
fn named(t: &Table) -> bool {
    t.metatable().is_some_and(|mt| {
        mt.raw_get::<Value>("__tostring").is_ok_and(|v| !v.is_nil())
            || mt.raw_get::<Value>("__name").is_ok_and(|v| !v.is_nil())
    })
}

/// Where a key sorts: numbers, then strings, then booleans, then the rest.
fn key_rank(k: &Value) -> u8 {
    match k {
        Value::Integer(_) | Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Boolean(_) => 2,
        _ => 3,
    }
}

fn key_cmp(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    key_rank(a).cmp(&key_rank(b)).then_with(|| match (a, b) {
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(&y.as_bytes()),
        (Value::Boolean(x), Value::Boolean(y)) => x.cmp(y),
        _ => match (a.as_number(), b.as_number()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            _ => Ordering::Equal,
        },
    })
}

/// Whether `s` can be written as `s = v` in a table constructor.
fn is_name(s: &[u8]) -> bool {
    const KEYWORDS: [&[u8]; 22] = [
        b"and",
        b"break",
        b"do",
        b"else",
        b"elseif",
        b"end",
        b"false",
        b"for",
        b"function",
        b"goto",
        b"if",
        b"in",
        b"local",
        b"nil",
        b"not",
        b"or",
        b"repeat",
        b"return",
        b"then",
        b"true",
        b"until",
        b"while",
    ];
    !s.is_empty()
        && !s[0].is_ascii_digit()
        && s.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && !KEYWORDS.contains(&s)
}

/// Lays out `v` at `depth`; `path` holds the tables being laid out (a
/// cycle back to one is `<cycle>`).
fn layout(
    lua: &Lua,
    v: &Value,
    depth: usize,
    path: &mut Vec<*const std::ffi::c_void>,
) -> mlua::Result<Doc> {
    let t = match v {
        Value::Table(t) if !named(t) => t,
        Value::String(s) if depth > 0 => return Ok(Doc::Atom(quoted(&s.as_bytes()))),
        other => return Ok(Doc::Atom(atom(lua, other)?)),
    };
    let id = t.to_pointer();
    if path.contains(&id) {
        return Ok(Doc::Atom("<cycle>".into()));
    }
    if depth >= MAX_DEPTH {
        return Ok(Doc::Atom("{...}".into()));
    }
    path.push(id);
    let mut pairs: Vec<(Value, Value)> = t.pairs::<Value, Value>().collect::<mlua::Result<_>>()?;
    // The sequence 1..n first, in order, without keys; then the rest sorted.
    let mut n = 0;
    while t.raw_get::<Value>(n + 1).is_ok_and(|v| !v.is_nil()) {
        n += 1;
    }
    pairs.retain(|(k, _)| !matches!(k, Value::Integer(i) if *i >= 1 && *i <= n));
    pairs.sort_by(|a, b| key_cmp(&a.0, &b.0));
    let total = n as usize + pairs.len();
    let mut entries = Vec::new();
    for i in 1..=n.min(MAX_ENTRIES as i64) {
        let v: Value = t.raw_get(i)?;
        entries.push((None, layout(lua, &v, depth + 1, path)?));
    }
    for (k, v) in pairs.iter().take(MAX_ENTRIES.saturating_sub(entries.len())) {
        let key = match k {
            Value::String(s) if is_name(&s.as_bytes()) => s.to_string_lossy(),
            Value::String(s) => format!("[{}]", quoted(&s.as_bytes())),
            other => format!("[{}]", atom(lua, other)?),
        };
        entries.push((Some(key), layout(lua, v, depth + 1, path)?));
    }
    path.pop();
    let more = total - entries.len();
    Ok(Doc::Table { entries, more })
}

/// `doc` on one line.
fn flat(doc: &Doc) -> String {
    match doc {
        Doc::Atom(s) => s.clone(),
        Doc::Table { entries, more } => {
            if entries.is_empty() && *more == 0 {
                return "{}".into();
            }
            let mut parts: Vec<String> = entries
                .iter()
                .map(|(k, v)| match k {
                    Some(k) => format!("{k} = {}", flat(v)),
                    None => flat(v),
                })
                .collect();
            if *more > 0 {
                parts.push(format!("... ({more} more)"));
            }
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// `doc` on one line if it fits, else one entry per line, indented.
fn render(doc: &Doc, indent: usize) -> String {
    let one = flat(doc);
    let Doc::Table { entries, more } = doc else {
        return one;
    };
    if indent + one.len() <= LINE_WIDTH {
        return one;
    }
    let pad = "  ".repeat(indent / 2 + 1);
    let mut s = String::from("{\n");
    for (k, v) in entries {
        s.push_str(&pad);
        if let Some(k) = k {
            s.push_str(k);
            s.push_str(" = ");
        }
        s.push_str(&render(v, indent + 2));
        s.push_str(",\n");
    }
    if *more > 0 {
        s.push_str(&format!("{pad}... ({more} more)\n"));
    }
    s.push_str(&"  ".repeat(indent / 2));
    s.push('}');
    s
}

/// A line's values, tab-separated and ended by a newline.
pub fn show_all(lua: &Lua, values: &mlua::MultiValue) -> mlua::Result<Vec<u8>> {
    super::console::line_of(values, |v| show(lua, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(lua: &Lua, src: &str) -> String {
        let v: Value = lua.load(src).eval().unwrap();
        String::from_utf8(show(lua, &v).unwrap()).unwrap()
    }

    #[test]
    fn tables_show_their_contents() {
        let lua = Lua::new();
        assert_eq!(shown(&lua, "{}"), "{}");
        assert_eq!(shown(&lua, "{1, 2, 3}"), "{1, 2, 3}");
        assert_eq!(
            shown(
                &lua,
                "{3, b = 'x', a = 1, [10] = true, ['a b'] = 2, [false] = 0}"
            ),
            "{3, [10] = true, a = 1, [\"a b\"] = 2, b = \"x\", [false] = 0}"
        );
        assert_eq!(
            shown(&lua, "{1.5, {x = {y = {z = 1}}}}"),
            "{1.5, {x = {y = {...}}}}"
        );
        assert_eq!(
            shown(&lua, "local t = {} t.self = t return t"),
            "{self = <cycle>}"
        );
        assert_eq!(
            shown(&lua, "'top'"),
            "top",
            "a string alone is shown as it is"
        );
        assert_eq!(shown(&lua, "{['end'] = 1}"), "{[\"end\"] = 1}");
    }

    #[test]
    fn long_things_are_cut() {
        let lua = Lua::new();
        let s = shown(&lua, "{string.rep('x', 100)}");
        assert!(s.ends_with("...\" (100 bytes)}"), "{s}");
        let s = shown(&lua, "local t = {} for i = 1, 30 do t[i] = i end return t");
        assert!(s.contains("... (6 more)"), "{s}");
        let s = shown(
            &lua,
            "{alpha = string.rep('a', 30), beta = string.rep('b', 30), gamma = 1}",
        );
        assert_eq!(
            s,
            "{\n  alpha = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\n  beta = \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",\n  gamma = 1,\n}"
        );
    }

    #[test]
    fn a_named_table_is_shown_as_it_says() {
        let lua = Lua::new();
        let s = shown(
            &lua,
            "setmetatable({}, {__tostring = function() return 'T!' end})",
        );
        assert_eq!(s, "T!");
        let s = shown(&lua, "setmetatable({1}, {__index = {}})");
        assert_eq!(s, "{1}", "a metatable that names nothing changes nothing");
    }
}
