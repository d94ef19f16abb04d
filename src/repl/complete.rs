//! Tab completion of globals and of fields after `.` and `:`, read from the
//! main actor's state.
//!
//! The word before the cursor is a path like `string.fo` or `s:up`: each
//! part but the last is looked up from the globals, the last is the prefix
//! to complete. Lookups are raw and follow `__index` only through tables
//! (found with `debug.getmetatable`, as `__metatable` may hide them), so
//! completing never runs a script's code: no `__index` function, no
//! `__pairs`. After `:` only functions are offered, as in a method call.
//!
//! The state is shared with the goroutines of the main actor; mlua locks it
//! for each access, and one completion holds it throughout, so it waits for
//! the running goroutine's time slice (10 ms at most), or for the end of a
//! blocking call (`io.read`) that a goroutine of the main actor is in.

use std::borrow::Cow;

use mlua::{Function, Lua, Table, Value};
use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

/// Lua's reserved words: offered at the start of a path, never as fields.
const KEYWORDS: [&str; 22] = [
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
];

/// How many `__index` tables a lookup follows (a loop of them is legal).
const MAX_INDEX_DEPTH: usize = 16;

/// The rustyline helper: completion only (no hints, colours or
/// validation; the REPL decides itself whether a chunk is complete).
pub struct LuaHelper<'lua> {
    lua: &'lua Lua,
    /// `debug.getmetatable` as it was at start, or `getmetatable`.
    getmetatable: Option<Function>,
}

impl<'lua> LuaHelper<'lua> {
    pub fn new(lua: &'lua Lua) -> LuaHelper<'lua> {
        let globals = lua.globals();
        let from_debug = globals
            .raw_get::<Option<Table>>("debug")
            .ok()
            .flatten()
            .and_then(|d| d.raw_get::<Option<Function>>("getmetatable").ok().flatten());
        let getmetatable = from_debug.or_else(|| {
            globals
                .raw_get::<Option<Function>>("getmetatable")
                .ok()
                .flatten()
        });
        LuaHelper { lua, getmetatable }
    }

    /// The completions of the word that ends `before` (the line up to the
    /// cursor): where the replaced part starts, and the candidates, sorted.
    pub fn candidates(&self, before: &str) -> (usize, Vec<String>) {
        let start = before
            .char_indices()
            .rev()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == ':'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &before[start..];
        if word.starts_with(|c: char| c.is_ascii_digit()) {
            return (before.len(), Vec::new());
        }
        let (path, method, prefix) = match word.rfind(['.', ':']) {
            None => (None, false, word),
            Some(i) => (Some(&word[..i]), word.as_bytes()[i] == b':', &word[i + 1..]),
        };
        let prefix_at = before.len() - prefix.len();
        let mut names = match path {
            None => {
                let mut names = self.fields(&Value::Table(self.lua.globals()), false);
                names.extend(KEYWORDS.iter().map(|k| k.to_string()));
                names
            }
            Some(path) => match self.resolve(path) {
                Some(v) => self.fields(&v, method),
                None => Vec::new(),
            },
        };
        names.retain(|n| n.starts_with(prefix));
        names.sort();
        names.dedup();
        (prefix_at, names)
    }

    /// The value at `path` (`a.b.c`, no `:`), if every part is found.
    fn resolve(&self, path: &str) -> Option<Value> {
        let mut v = Value::Table(self.lua.globals());
        for part in path.split('.') {
            if !is_identifier(part) {
                return None;
            }
            v = self.field(&v, part)?;
        }
        Some(v)
    }

    /// `v[name]` without running any metamethod function.
    fn field(&self, v: &Value, name: &str) -> Option<Value> {
        let mut cur = v.clone();
        for _ in 0..MAX_INDEX_DEPTH {
            if let Value::Table(t) = &cur {
                match t.raw_get::<Value>(name) {
                    Ok(Value::Nil) => {}
                    Ok(found) => return Some(found),
                    Err(_) => return None,
                }
            }
            cur = self.index_table(&cur)?;
        }
        None
    }

    /// The names `v` offers: its own string keys and those of its
    /// `__index` tables; only functions when `methods`.
    fn fields(&self, v: &Value, methods: bool) -> Vec<String> {
        let mut names = Vec::new();
        let mut cur = Some(v.clone());
        for _ in 0..MAX_INDEX_DEPTH {
            let Some(v) = cur else { break };
            if let Value::Table(t) = &v {
                for (k, val) in t.pairs::<Value, Value>().flatten() {
                    let Value::String(k) = k else { continue };
                    let Ok(k) = k.to_str() else { continue };
                    let callable = matches!(val, Value::Function(_)) || self.has_call(&val);
                    if is_identifier(&k) && (!methods || callable) {
                        names.push(k.to_string());
                    }
                }
            }
            cur = self.index_table(&v);
        }
        names
    }

    /// The `__index` of `v`'s metatable, if it is a table.
    fn index_table(&self, v: &Value) -> Option<Value> {
        match self.metafield(v, "__index")? {
            t @ Value::Table(_) => Some(t),
            _ => None,
        }
    }

    /// Whether `v` has a `__call` metamethod.
    fn has_call(&self, v: &Value) -> bool {
        matches!(v, Value::Table(_) | Value::UserData(_))
            && self.metafield(v, "__call").is_some_and(|c| !c.is_nil())
    }

    fn metafield(&self, v: &Value, name: &str) -> Option<Value> {
        let getmetatable = self.getmetatable.as_ref()?;
        let mt = getmetatable.call::<Option<Table>>(v.clone()).ok()??;
        mt.raw_get::<Value>(name).ok()
    }
}

/// A name usable after `.`: Lua's identifier rule, reserved words excluded.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&s)
}

impl Completer for LuaHelper<'_> {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        // One lock of the state for all the lookups, rather than a wait
        // for the running goroutine's slice at each.
        Ok(self.lua.exec_raw_lua(|_| self.candidates(&line[..pos])))
    }
}

impl Hinter for LuaHelper<'_> {
    type Hint = String;
}

impl Highlighter for LuaHelper<'_> {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        Cow::Borrowed(line)
    }
}

impl Validator for LuaHelper<'_> {}

impl Helper for LuaHelper<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runtime's main state (lugo's libraries, `debug` included) with a
    /// few globals to complete.
    fn runtime() -> lugo::Runtime {
        let rt = lugo::Runtime::builder()
            .procs(1)
            .build()
            .expect("start a runtime");
        rt.lua()
            .load(
                "s = 'text'
                 obj = setmetatable({x = 1}, {__index = {move = function() end, size = 3}})
                 hidden = setmetatable({}, {__metatable = false, __index = {secret = 1}})
                 loop = setmetatable({}, {}) getmetatable(loop).__index = loop",
            )
            .exec()
            .expect("set up globals");
        rt
    }

    fn complete(rt: &lugo::Runtime, before: &str) -> (usize, Vec<String>) {
        LuaHelper::new(rt.lua()).candidates(before)
    }

    #[test]
    fn globals_and_keywords() {
        let rt = runtime();
        assert_eq!(complete(&rt, "str"), (0, vec!["string".to_string()]));
        assert_eq!(complete(&rt, "x = fun"), (4, vec!["function".to_string()]));
    }

    #[test]
    fn fields_after_dot() {
        let rt = runtime();
        assert_eq!(complete(&rt, "string.fo"), (7, vec!["format".to_string()]));
        let (at, names) = complete(&rt, "print(obj.");
        assert_eq!(at, 10);
        assert_eq!(names, ["move", "size", "x"]);
    }

    #[test]
    fn methods_after_colon() {
        let rt = runtime();
        assert_eq!(complete(&rt, "s:up"), (2, vec!["upper".to_string()]));
        assert_eq!(complete(&rt, "obj:"), (4, vec!["move".to_string()]));
        // debug.getmetatable sees through __metatable.
        assert_eq!(complete(&rt, "hidden.se"), (7, vec!["secret".to_string()]));
    }

    #[test]
    fn each_kind_of_socket_its_own_methods() {
        let rt = runtime();
        rt.lua()
            .load("l = net.listen('127.0.0.1:0') u = net.udp('127.0.0.1:0')")
            .exec()
            .expect("open sockets");
        let (_, names) = complete(&rt, "l:");
        assert_eq!(
            names,
            ["accept", "addr", "close", "setcontext", "settimeout"]
        );
        let (_, names) = complete(&rt, "u:re");
        assert_eq!(names, ["recv", "recvfrom"]);
        rt.lua().load("l:close() u:close()").exec().expect("close");
    }

    #[test]
    fn nothing_for_unknown_or_odd_paths() {
        let rt = runtime();
        assert!(complete(&rt, "nope.x").1.is_empty());
        assert!(complete(&rt, "s:len:").1.is_empty());
        assert!(complete(&rt, "a..b").1.is_empty());
        assert!(complete(&rt, "3.1").1.is_empty());
        assert!(complete(&rt, "loop.nothing").1.is_empty());
    }
}
