//! Channel endpoints the embedding program holds: a host thread sends
//! and receives on a channel as a goroutine would, parking on it
//! ([`HostPark`]). While an endpoint exists the host counts as a holder
//! of the channel, so goroutines waiting on it are not deadlocked
//! ([`crate::host`]). The embedder's face: it sits on the scheduler.

use std::cell::OnceCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::chan::{Chan, HostPark, ParkEnd, Parker, RecvResult, SendResult};
use crate::sched::Runtime;
use crate::wake::{Msg, Wake};

/// Why a host's channel operation failed.
#[derive(Debug, PartialEq, Eq)]
pub enum ChanError {
    /// The channel is closed (a send; a receive gets `ok == false`).
    Closed,
    /// Nothing could be done by the deadline (a `try_` call: at once).
    Timeout,
    /// The runtime has stopped.
    Stopped,
}

/// The host's handle on a channel. While one exists the host counts as a
/// holder of the channel: goroutines waiting on it are not deadlocked.
/// Values move as copies ([`Msg::Copied`] and scalars): the channel is
/// shared from the start.
pub struct Endpoint {
    chan: Arc<Chan>,
    rt: Runtime,
}

impl Endpoint {
    /// A new channel of capacity `cap`, held by the host.
    pub fn new(rt: &Runtime, cap: usize) -> Endpoint {
        let chan = Chan::new_shared(cap);
        rt.hold_endpoint();
        Endpoint {
            chan: Arc::new(chan),
            rt: rt.clone(),
        }
    }

    /// The channel.
    pub fn chan(&self) -> &Arc<Chan> {
        &self.chan
    }

    /// The runtime whose goroutines share the channel.
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// Sends `msg`, waiting until `deadline` (`None`: for as long as it
    /// takes; a past deadline: only if it can be done at once).
    pub fn send(&self, msg: Msg, deadline: Option<Instant>) -> Result<(), ChanError> {
        let park = OnceCell::new();
        match self.chan.send(msg, || parker(&park, deadline)) {
            SendResult::Sent => Ok(()),
            SendResult::Closed(_) => Err(ChanError::Closed),
            SendResult::WouldBlock(_) => Err(ChanError::Timeout),
            SendResult::Park => match self.wait(parked(&park), deadline)? {
                Wake::SendClosed(_) => Err(ChanError::Closed),
                _ => Ok(()),
            },
        }
    }

    /// Receives a value and whether it was sent (`false`: the channel is
    /// closed and drained), waiting until `deadline` as [`Endpoint::send`].
    pub fn recv(&self, deadline: Option<Instant>) -> Result<(Msg, bool), ChanError> {
        let park = OnceCell::new();
        match self.chan.recv(|| parker(&park, deadline)) {
            RecvResult::Got(m, ok) => Ok((m, ok)),
            RecvResult::WouldBlock => Err(ChanError::Timeout),
            RecvResult::Park => match self.wait(parked(&park), deadline)? {
                Wake::Recv(m, ok)
                | Wake::Select {
                    recv: Some((m, ok)),
                    ..
                } => Ok((m, ok)),
                _ => Ok((Msg::Nil, false)),
            },
        }
    }

    fn wait(&self, park: &Arc<HostPark>, deadline: Option<Instant>) -> Result<Wake, ChanError> {
        if !self.rt.park_host(park) {
            park.token.store(true, Ordering::Release);
            return Err(ChanError::Stopped);
        }
        park.wait(deadline).map_err(|e| match e {
            ParkEnd::Timeout => ChanError::Timeout,
            ParkEnd::Stopped => ChanError::Stopped,
        })
    }

    /// Closes the channel; false if it was closed already.
    pub fn close(&self) -> bool {
        self.chan.close().is_ok()
    }
}

/// The host's parker for an operation that must wait, made only then (a
/// value that is there at once costs no allocation); none for a deadline
/// already past (only what can be done at once is done).
fn parker(park: &OnceCell<Arc<HostPark>>, deadline: Option<Instant>) -> Option<Parker> {
    if deadline.is_some_and(|d| d <= Instant::now()) {
        return None;
    }
    Some(Parker::Host(park.get_or_init(Arc::default).clone()))
}

/// The parker [`parker`] made for an operation that parked.
fn parked(park: &OnceCell<Arc<HostPark>>) -> &Arc<HostPark> {
    park.get()
        .expect("an operation parks only with the parker it was given")
}

impl Clone for Endpoint {
    fn clone(&self) -> Endpoint {
        self.rt.hold_endpoint();
        Endpoint {
            chan: self.chan.clone(),
            rt: self.rt.clone(),
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.rt.release_endpoint();
    }
}
