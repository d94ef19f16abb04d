//! [`Value`]: a Lua value as plain Rust data, what the host sends and
//! receives on channels and answers deferred calls with.
//!
//! Values cross between the host and goroutines as copies, as they do
//! between actors: a table is copied whole (its metatable dropped); a
//! table reached twice is copied twice; a cycle, a function or a channel
//! cannot reach the host and is refused with an error naming it.

use std::sync::Arc;

use lugo_vm::portable::{PValue, Portable};
use lugo_vm::Msg;

/// A Lua value as plain data. `Display` writes it as Lua source would
/// (`{ id = 1, tags = { "a", "b" } }`); strings that are not UTF-8 show
/// their bytes escaped.
#[derive(Clone, PartialEq)]
pub enum Value {
    /// `nil`.
    Nil,
    /// A boolean.
    Boolean(bool),
    /// An integer.
    Integer(i64),
    /// A float.
    Number(f64),
    /// A string: Lua strings are bytes (see [`Value::as_str`]).
    String(Vec<u8>),
    /// A table, as its key/value pairs (no `nil` keys or values).
    Table(Vec<(Value, Value)>),
}

impl Value {
    /// A table with `items` at keys `1..=n`.
    pub fn array<V: Into<Value>>(items: impl IntoIterator<Item = V>) -> Value {
        Value::Table(
            items
                .into_iter()
                .zip(1..)
                .map(|(v, i)| (Value::Integer(i), v.into()))
                .collect(),
        )
    }

    /// A table of these key/value pairs.
    pub fn map<K: Into<Value>, V: Into<Value>>(pairs: impl IntoIterator<Item = (K, V)>) -> Value {
        Value::Table(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is one or a float with an integer value.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.2e18 => Some(*n as i64),
            _ => None,
        }
    }

    /// The number, if this is one (integers included).
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Integer(i) => Some(*i as f64),
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The string, if this is one and valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The value at `key`, if this is a table that has it.
    pub fn get(&self, key: impl Into<Value>) -> Option<&Value> {
        let key = key.into();
        match self {
            Value::Table(pairs) => pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The values at keys `1..=n` of a table (its sequence; empty for
    /// anything else).
    pub fn sequence(&self) -> Vec<&Value> {
        (1..).map_while(|i| self.get(i)).collect()
    }

    /// The message carrying this value on a channel.
    pub(crate) fn into_msg(self) -> Msg {
        match self {
            Value::Nil => Msg::Nil,
            Value::Boolean(b) => Msg::Boolean(b),
            Value::Integer(i) => Msg::Integer(i),
            Value::Number(n) => Msg::Number(n),
            other => {
                let mut tables = Vec::new();
                let root = other.into_pvalue(&mut tables);
                Msg::Copied(Arc::new(Portable::new(root, tables)))
            }
        }
    }

    fn into_pvalue(self, tables: &mut Vec<Vec<(PValue, PValue)>>) -> PValue {
        match self {
            Value::Nil => PValue::Nil,
            Value::Boolean(b) => PValue::Boolean(b),
            Value::Integer(i) => PValue::Integer(i),
            Value::Number(n) => PValue::Number(n),
            Value::String(s) => PValue::String(s.into_boxed_slice()),
            Value::Table(pairs) => {
                let at = tables.len();
                tables.push(Vec::new());
                let pairs = pairs
                    .into_iter()
                    .filter(|(k, v)| *k != Value::Nil && *v != Value::Nil)
                    .map(|(k, v)| (k.into_pvalue(tables), v.into_pvalue(tables)))
                    .collect();
                tables[at] = pairs;
                PValue::Table(at)
            }
        }
    }

    /// The value a message carries (a goroutine sent it on a host's
    /// channel, which is shared: it holds copies, never slots).
    pub(crate) fn from_msg(msg: Msg) -> crate::Result<Value> {
        Ok(match msg {
            Msg::Nil | Msg::Slot(_) => Value::Nil,
            Msg::Boolean(b) => Value::Boolean(b),
            Msg::Integer(i) => Value::Integer(i),
            Msg::Number(n) => Value::Number(n),
            Msg::Copied(p) => from_pvalue(&p, &p.root, &mut Vec::new(), "value")?,
            Msg::Kept(k) => from_pvalue(&k.copy, &k.copy.root, &mut Vec::new(), "value")?,
        })
    }
}

/// Rebuilds `v` of `p`; `open` holds the tables being rebuilt (a cycle
/// comes back to one of them), `path` names the part for errors.
fn from_pvalue(
    p: &Portable,
    v: &PValue,
    open: &mut Vec<usize>,
    path: &str,
) -> crate::Result<Value> {
    let refuse = |what: &str| {
        Err(crate::Error::Lua(mlua::Error::runtime(format!(
            "the host cannot receive {what} at {path}"
        ))))
    };
    Ok(match v {
        PValue::Nil => Value::Nil,
        PValue::Boolean(b) => Value::Boolean(*b),
        PValue::Integer(i) => Value::Integer(*i),
        PValue::Number(n) => Value::Number(*n),
        PValue::String(s) => Value::String(s.to_vec()),
        PValue::Chan(_) => return refuse("a channel"),
        PValue::Actor(_) => return refuse("an actor"),
        PValue::Moved(_) => return refuse("a socket"),
        PValue::Shared(_) => return refuse("a sync object or context"),
        PValue::Table(t) => {
            if open.contains(t) {
                return refuse("a table that contains itself");
            }
            open.push(*t);
            let mut pairs = Vec::with_capacity(p.tables[*t].len());
            for (k, val) in &p.tables[*t] {
                let key = from_pvalue(p, k, open, path)?;
                let sub = match &key {
                    Value::String(s) => format!("{path}.{}", String::from_utf8_lossy(s)),
                    Value::Integer(i) => format!("{path}[{i}]"),
                    _ => format!("{path}[?]"),
                };
                pairs.push((key, from_pvalue(p, val, open, &sub)?));
            }
            open.pop();
            Value::Table(pairs)
        }
    })
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Integer(i) => write!(f, "{i}"),
            // Lua writes floats with a fraction or an exponent: 7.0, 1e+100.
            Value::Number(n) if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e16 => {
                write!(f, "{n:.1}")
            }
            Value::Number(n) => write!(f, "{n}"),
            Value::String(b) => match std::str::from_utf8(b) {
                Ok(s) => write!(f, "{s:?}"),
                Err(_) => write!(f, "\"{}\"", b.escape_ascii()),
            },
            Value::Table(pairs) => {
                f.write_str("{")?;
                let mut next = 1;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    f.write_str(if i == 0 { " " } else { ", " })?;
                    match k {
                        // The sequence part, in order, without keys.
                        Value::Integer(n) if *n == next => next += 1,
                        Value::String(s) if is_name(s) => {
                            write!(f, "{} = ", String::from_utf8_lossy(s))?
                        }
                        other => write!(f, "[{other}] = ")?,
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(if pairs.is_empty() { "}" } else { " }" })
            }
        }
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Whether `s` is a Lua name (a table key written without brackets).
fn is_name(s: &[u8]) -> bool {
    matches!(s.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
        && s.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

impl From<()> for Value {
    fn from(_: ()) -> Value {
        Value::Nil
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Boolean(b)
    }
}

macro_rules! from_integer {
    ($($t:ty)*) => {$(
        impl From<$t> for Value {
            fn from(i: $t) -> Value {
                Value::Integer(i64::from(i))
            }
        }
    )*};
}
from_integer!(i8 i16 i32 i64 u8 u16 u32);

/// Lua integers are 64-bit signed: larger values become floats.
macro_rules! from_wide_integer {
    ($($t:ty)*) => {$(
        impl From<$t> for Value {
            fn from(i: $t) -> Value {
                i64::try_from(i).map_or(Value::Number(i as f64), Value::Integer)
            }
        }
    )*};
}
from_wide_integer!(u64 usize isize);

impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::Number(n)
    }
}

impl From<f32> for Value {
    fn from(n: f32) -> Value {
        Value::Number(f64::from(n))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.as_bytes().to_vec())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s.into_bytes())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Nil, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: Value) -> Value {
        Value::from_msg(v.into_msg()).expect("converts back")
    }

    #[test]
    fn scalars_and_tables_survive_the_trip() {
        for v in [
            Value::Nil,
            Value::from(true),
            Value::from(42),
            Value::from(1.5),
            Value::from("héllo"),
        ] {
            assert_eq!(round_trip(v.clone()), v);
        }
        let t = Value::map([
            ("name", Value::from("job")),
            ("args", Value::array([1, 2, 3])),
        ]);
        let back = round_trip(t.clone());
        assert_eq!(back, t);
        assert_eq!(back.get("name").and_then(Value::as_str), Some("job"));
        let args: Vec<i64> = back
            .get("args")
            .unwrap()
            .sequence()
            .iter()
            .filter_map(|v| v.as_integer())
            .collect();
        assert_eq!(args, [1, 2, 3]);
    }

    #[test]
    fn values_print_as_lua_source() {
        let t = Value::map([
            ("id", Value::from(7)),
            ("tags", Value::array(["a", "b"])),
            ("ratio", Value::from(2.0)),
        ]);
        assert_eq!(
            t.to_string(),
            r#"{ id = 7, tags = { "a", "b" }, ratio = 2.0 }"#
        );
        assert_eq!(Value::map([(1.5, true)]).to_string(), "{ [1.5] = true }");
        assert_eq!(Value::String(vec![0xff, b'a']).to_string(), r#""\xffa""#);
        assert_eq!(format!("{:?}", Value::from("é")), r#""é""#);
        assert_eq!(Value::from(u64::MAX), Value::Number(u64::MAX as f64));
    }

    #[test]
    fn nil_keys_and_values_are_left_out() {
        let t = Value::Table(vec![
            (Value::Nil, Value::from(1)),
            (Value::from("a"), Value::Nil),
            (Value::from("b"), Value::from(2)),
        ]);
        assert_eq!(round_trip(t), Value::map([("b", 2)]));
    }

    #[test]
    fn a_cycle_is_refused_with_its_path() {
        // A table whose field `me` is itself, as a goroutine would send it.
        let p = Portable::new(
            PValue::Table(0),
            vec![vec![(
                PValue::String(b"me".to_vec().into()),
                PValue::Table(0),
            )]],
        );
        let err = Value::from_msg(Msg::Copied(Arc::new(p))).unwrap_err();
        assert!(
            err.to_string()
                .contains("a table that contains itself at value.me"),
            "{err}"
        );
    }
}
