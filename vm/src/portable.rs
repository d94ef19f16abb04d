//! Values that cross actors: plain data, copied out of one Lua state and
//! rebuilt in another (DESIGN.md section 4).
//!
//! Tables are kept in a side list and referred to by index, so cycles and
//! shared sub-tables survive the copy; metatables are dropped. Channels
//! travel by reference. The conversion from and to Lua lives with the
//! stdlib, which knows the userdata types (`lugo-stdlib`'s `copy`).

use std::sync::Arc;

use crate::chan::Chan;

/// One value of a copied graph.
#[derive(Clone, Debug)]
pub enum PValue {
    /// `nil`.
    Nil,
    /// A boolean.
    Boolean(bool),
    /// An integer.
    Integer(i64),
    /// A float.
    Number(f64),
    /// A string's bytes.
    String(Box<[u8]>),
    /// The table at this index of [`Portable::tables`].
    Table(usize),
    /// A channel (shared, not copied).
    Chan(Arc<Chan>),
    /// An actor handle.
    Actor(Arc<crate::Actor>),
}

/// A copied value: its root and every table it reaches.
#[derive(Clone, Debug)]
pub struct Portable {
    /// The value itself.
    pub root: PValue,
    /// The tables, each as its key/value pairs.
    pub tables: Vec<Vec<(PValue, PValue)>>,
}

impl Portable {
    /// A value without tables.
    pub fn scalar(v: PValue) -> Portable {
        Portable {
            root: v,
            tables: Vec::new(),
        }
    }
}
