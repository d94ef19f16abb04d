//! Values that cross actors: plain data, copied out of one Lua state and
//! rebuilt in another (DESIGN.md section 4).
//!
//! Tables are kept in a side list and referred to by index, so cycles and
//! shared sub-tables survive the copy; metatables are dropped. Channels
//! and actor handles travel by reference, as a [`Handle`] that does not
//! name their type: this layer sits below the channels and actors it
//! carries. The conversion from and to Lua lives with the stdlib, which
//! knows the userdata types (`lugo-stdlib`'s `copy`).
//!
//! A value that was buffered in a channel before the channel reached a
//! second actor is [`Kept`]: its copy for the other actors, and for the
//! actor that sent it the original (a table keeps its identity there).

use std::any::Any;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Weak};

use crate::mem::Charge;

/// One value of a copied graph.
#[derive(Debug)]
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
    /// A channel (shared, not copied): a `Handle` of a `crate::Chan`.
    Chan(Handle),
    /// An actor handle: a `Handle` of a `crate::Actor`.
    Actor(Handle),
    /// An object of the face that moves rather than being shared (a
    /// socket): the actor that rebuilds the value takes it, and the
    /// sender's handle is left moved.
    Moved(Handle),
    /// Another object of the face that every actor receiving it shares (a
    /// wait group, a mutex: their state lives in Rust).
    Shared(Handle),
}

/// A reference to a runtime object that travels by reference, held
/// without its type; whoever made it knows what it holds.
#[derive(Clone)]
pub struct Handle(Arc<dyn Any + Send + Sync>);

impl Handle {
    /// A handle of `v`.
    pub fn new<T: Any + Send + Sync>(v: Arc<T>) -> Handle {
        Handle(v)
    }

    /// The object, if it is a `T`.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.0.clone().downcast().ok()
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Handle({:p})", Arc::as_ptr(&self.0))
    }
}

/// The sender of a [`Kept`] value (an actor): lets go of a slot of its
/// values table from any thread.
pub trait SlotOwner: Send + Sync {
    /// Releases `slot` when the owner next runs.
    fn release_later(&self, slot: c_int);
}

/// A copied value: its root and every table it reaches.
#[derive(Debug)]
pub struct Portable {
    /// The value itself.
    pub root: PValue,
    /// The tables, each as its key/value pairs.
    pub tables: Vec<Vec<(PValue, PValue)>>,
    /// Its bytes, charged to the actor that copied it until it is
    /// delivered or dropped (`crate::mem`).
    pub charge: Charge,
}

impl Portable {
    /// A value without tables.
    pub fn scalar(v: PValue) -> Portable {
        Portable::new(v, Vec::new())
    }

    /// A value and its tables, charged to nobody (made by the host).
    pub fn new(root: PValue, tables: Vec<Vec<(PValue, PValue)>>) -> Portable {
        Portable {
            root,
            tables,
            charge: Charge::NONE,
        }
    }
}

/// No slot (`LUA_NOREF`).
const NO_SLOT: c_int = -2;

/// A value of one actor's that was in a channel when the channel became
/// shared: the actor that sent it receives the original (its slot in
/// that actor's values table), any other actor the copy. Whoever does not
/// take the slot lets it go through the sender's deferred releases
/// ([`SlotOwner::release_later`]): only the sender's M may touch its state.
pub struct Kept {
    /// The sender's values table (its address identifies the state).
    values: *const c_void,
    /// The sender, to release the slot in its state.
    origin: Weak<dyn SlotOwner>,
    /// The original's slot; `NO_SLOT` once taken.
    slot: AtomicI32,
    /// The copy, for other actors.
    pub copy: Portable,
}

// SAFETY: `values` is an address used only for comparison, never
// dereferenced; the rest is Send + Sync.
unsafe impl Send for Kept {}
// SAFETY: as above.
unsafe impl Sync for Kept {}

impl Kept {
    /// Keeps `slot` of `origin`'s values table (at `values`) beside `copy`.
    pub fn new(
        origin: Weak<dyn SlotOwner>,
        values: *const c_void,
        slot: c_int,
        copy: Portable,
    ) -> Kept {
        Kept {
            values,
            origin,
            slot: AtomicI32::new(slot),
            copy,
        }
    }

    /// The original's slot, if the state whose values table is at
    /// `values` is the sender's and nobody took it yet.
    pub fn take_slot(&self, values: *const c_void) -> Option<c_int> {
        if !std::ptr::eq(values, self.values) {
            return None;
        }
        match self.slot.swap(NO_SLOT, Ordering::AcqRel) {
            NO_SLOT => None,
            s => Some(s),
        }
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        let slot = *self.slot.get_mut();
        if slot != NO_SLOT {
            if let Some(a) = self.origin.upgrade() {
                a.release_later(slot);
            }
        }
    }
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kept({:?})", self.copy.root)
    }
}
