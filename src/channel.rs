//! The host's ends of lugo channels ([`Sender`], [`Receiver`]) and the
//! answer to a deferred host function ([`Reply`]).
//!
//! Both ends are handles on one lugo channel (a
//! [`lugo_vm::endpoint::Endpoint`]): a goroutine given either sees an ordinary
//! channel (`ch:recv()`, `ch:send(v)`, `select`). Values are copied
//! ([`Value`]). While the host holds any end of any channel, goroutines
//! blocked on channels are not reported as deadlocked: the host may still
//! send or receive. A host thread blocked in `send` or `recv` parks on the
//! channel like a goroutine and is woken when the runtime stops.

use std::time::{Duration, Instant};

use lugo_vm::endpoint::{ChanError, Endpoint};
use mlua::{IntoLua, Lua};

use crate::{Error, Result, Value};

fn chan_error(e: ChanError, ep: &Endpoint) -> Error {
    match e {
        ChanError::Closed => Error::Closed,
        ChanError::Timeout => Error::Timeout,
        ChanError::Stopped => {
            Error::Stopped(ep.runtime().outcome().unwrap_or(crate::Outcome::Exit(0)))
        }
    }
}

/// The host's sending end of a channel. Clone it for more senders.
#[derive(Clone)]
pub struct Sender {
    pub(crate) ep: Endpoint,
}

/// The host's receiving end of a channel. Clone it for more receivers.
#[derive(Clone)]
pub struct Receiver {
    pub(crate) ep: Endpoint,
}

impl Sender {
    /// Sends `v`, waiting while the channel is full (as `ch:send(v)`).
    /// `Err(Closed)` if the channel is closed.
    pub fn send(&self, v: impl Into<Value>) -> Result<()> {
        self.send_by(v.into(), None)
    }

    /// Sends `v` if it can be done at once; `Err(Timeout)` if not.
    pub fn try_send(&self, v: impl Into<Value>) -> Result<()> {
        self.send_by(v.into(), Some(Instant::now()))
    }

    /// Sends `v`, waiting at most `d`.
    pub fn send_timeout(&self, v: impl Into<Value>, d: Duration) -> Result<()> {
        self.send_by(v.into(), Some(Instant::now() + d))
    }

    fn send_by(&self, v: Value, deadline: Option<Instant>) -> Result<()> {
        self.ep
            .send(v.into_msg(), deadline)
            .map_err(|e| chan_error(e, &self.ep))
    }

    /// Closes the channel (as `ch:close()`): receivers drain it, then get
    /// `None`. `Err(Closed)` if it was closed already.
    pub fn close(&self) -> Result<()> {
        if self.ep.close() {
            Ok(())
        } else {
            Err(Error::Closed)
        }
    }
}

impl Receiver {
    /// Receives a value, waiting while the channel is empty; `Ok(None)`
    /// once it is closed and drained (as `v, ok = ch:recv()` with `ok`
    /// false).
    pub fn recv(&self) -> Result<Option<Value>> {
        self.recv_by(None)
    }

    /// Receives a value if one is there; `Err(Timeout)` if not.
    pub fn try_recv(&self) -> Result<Option<Value>> {
        self.recv_by(Some(Instant::now()))
    }

    /// Receives a value, waiting at most `d`.
    pub fn recv_timeout(&self, d: Duration) -> Result<Option<Value>> {
        self.recv_by(Some(Instant::now() + d))
    }

    fn recv_by(&self, deadline: Option<Instant>) -> Result<Option<Value>> {
        match self.ep.recv(deadline) {
            Ok((msg, true)) => Value::from_msg(msg).map(Some),
            Ok((_, false)) => Ok(None),
            Err(e) => Err(chan_error(e, &self.ep)),
        }
    }

    /// The values until the channel is closed and drained (or the runtime
    /// stops, or a value cannot be received: the iteration ends).
    pub fn iter(&self) -> impl Iterator<Item = Value> + '_ {
        std::iter::from_fn(move || self.recv().ok().flatten())
    }
}

impl IntoLua for &Sender {
    fn into_lua(self, lua: &Lua) -> mlua::Result<mlua::Value> {
        lugo_stdlib::host::chan_value(lua, self.ep.chan().clone())
    }
}

impl IntoLua for &Receiver {
    fn into_lua(self, lua: &Lua) -> mlua::Result<mlua::Value> {
        lugo_stdlib::host::chan_value(lua, self.ep.chan().clone())
    }
}

impl IntoLua for Sender {
    fn into_lua(self, lua: &Lua) -> mlua::Result<mlua::Value> {
        (&self).into_lua(lua)
    }
}

impl IntoLua for Receiver {
    fn into_lua(self, lua: &Lua) -> mlua::Result<mlua::Value> {
        (&self).into_lua(lua)
    }
}

/// The answer to one call of a deferred host function
/// ([`crate::Builder::deferred_function`]). Send it to any thread; the
/// calling goroutine stays parked until [`Reply::ok`] or [`Reply::err`].
/// Dropped unanswered, it fails the call with
/// `name: the host dropped the call without an answer`.
pub struct Reply {
    ep: Option<Endpoint>,
    name: String,
}

impl Reply {
    pub(crate) fn new(ep: Endpoint, name: &str) -> Reply {
        Reply {
            ep: Some(ep),
            name: name.to_string(),
        }
    }

    /// The call returns `values`.
    pub fn ok<V: Into<Value>>(mut self, values: impl IntoIterator<Item = V>) {
        let mut answer = vec![(Value::Integer(1), Value::Boolean(true))];
        let mut n = 1;
        for v in values {
            n += 1;
            answer.push((Value::Integer(n), v.into()));
        }
        answer.push((Value::from("n"), Value::Integer(n)));
        self.answer(Value::Table(answer));
    }

    /// The call raises `message` (at the caller, as `error(message, 2)`).
    pub fn err(mut self, message: impl Into<String>) {
        self.answer(Value::array([
            Value::Boolean(false),
            Value::from(message.into()),
        ]));
    }

    fn answer(&mut self, v: Value) {
        if let Some(ep) = self.ep.take() {
            // One answer on a channel of one: it never waits. A goroutine
            // that has gone (interrupted) leaves it unread.
            let _ = ep.send(v.into_msg(), Some(Instant::now()));
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if self.ep.is_some() {
            let msg = format!("{}: the host dropped the call without an answer", self.name);
            self.answer(Value::array([Value::Boolean(false), Value::from(msg)]));
        }
    }
}
