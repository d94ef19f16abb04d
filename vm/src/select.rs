//! `chan.select`: wait on several channel operations at once.
//!
//! Protocol (Go's `selectgo`):
//! 1. Lock every distinct channel in id order (a fixed order: no deadlock
//!    between two selects over the same channels). Sorting the cases by
//!    channel id also maps each case to its lock: O(n log n) in all.
//! 2. Poll the cases in a random order; the first that can proceed runs.
//!    This gives the uniform choice among ready cases.
//! 3. If none can and the select may block, queue one waiter per case,
//!    all for the one park of its G; unlock; park. The first channel
//!    operation that claims the park (`GRef::claim`) completes the select;
//!    the other waiters are dead and are skipped or swept by their
//!    channels.

use std::sync::Arc;

use crate::actor::GRef;
use crate::chan::{wake_one, Chan, ChanState, Parker, Waiter};
use crate::lockrank::Guard;
use crate::wake::Msg;

/// One case of a select.
pub enum Case {
    /// Receive from the channel.
    Recv(Arc<Chan>),
    /// Send the value on the channel.
    Send(Arc<Chan>, Msg),
}

impl Case {
    fn chan(&self) -> &Arc<Chan> {
        match self {
            Case::Recv(c) | Case::Send(c, _) => c,
        }
    }
}

/// What a select did.
pub enum SelectResult {
    /// Case `case` (its number) ran; `recv` holds a receive's value and ok
    /// flag.
    Ready {
        /// The case's number.
        case: usize,
        /// The value and ok flag of a receive case.
        recv: Option<(Msg, bool)>,
    },
    /// Case `case` would send on a closed channel (the caller raises).
    SendClosed(usize),
    /// Nothing was ready, and the select has a default case or its caller
    /// cannot park (`me` gave no G).
    WouldBlock,
    /// Waiters are queued: park the G.
    Park,
}

/// Runs a select over `cases`, each with the number it is reported by
/// (its position among the caller's cases, which may include some that
/// never fire and are not passed: Go's nil channels); `block` is false when
/// there is a default. `me` gives `None` when the caller cannot park.
pub fn select(
    cases: Vec<(usize, Case)>,
    block: bool,
    me: impl FnOnce() -> Option<GRef>,
) -> SelectResult {
    if cases.is_empty() {
        return match (block, me()) {
            (true, Some(_)) => SelectResult::Park,
            _ => SelectResult::WouldBlock,
        };
    }
    let (nums, cases): (Vec<usize>, Vec<Case>) = cases.into_iter().unzip();
    // The distinct channels in id order, and each case's among them.
    let mut by_id: Vec<(u64, usize)> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| (c.chan().id, i))
        .collect();
    by_id.sort_unstable();
    let mut chans: Vec<Arc<Chan>> = Vec::with_capacity(by_id.len());
    let mut lock_of = vec![0; cases.len()];
    for &(id, i) in &by_id {
        if chans.last().is_none_or(|c| c.id != id) {
            chans.push(cases[i].chan().clone());
        }
        lock_of[i] = chans.len() - 1;
    }
    let mut guards: Vec<Guard<'_, ChanState>> = chans.iter().map(|c| c.lock()).collect();

    let mut cases: Vec<Option<Case>> = cases.into_iter().map(Some).collect();
    let mut order: Vec<usize> = (0..cases.len()).collect();
    fastrand::shuffle(&mut order);
    let mut wake = None;
    let mut result = None;
    for &i in &order {
        let case = cases[i].take().expect("each case is polled once");
        let ch = case.chan().clone();
        let s = &mut *guards[lock_of[i]];
        match case {
            Case::Recv(_) => {
                if let Some((m, ok)) = ch.try_recv_locked(s, &mut wake) {
                    result = Some(SelectResult::Ready {
                        case: nums[i],
                        recv: Some((m, ok)),
                    });
                    break;
                }
                cases[i] = Some(Case::Recv(ch));
            }
            Case::Send(_, msg) => {
                if s.closed {
                    result = Some(SelectResult::SendClosed(nums[i]));
                    break;
                }
                match ch.try_send_locked(s, msg, &mut wake) {
                    Ok(()) => {
                        result = Some(SelectResult::Ready {
                            case: nums[i],
                            recv: None,
                        });
                        break;
                    }
                    Err(msg) => cases[i] = Some(Case::Send(ch, msg)),
                }
            }
        }
    }
    let result = match result {
        Some(r) => r,
        None => match me().filter(|_| block) {
            None => SelectResult::WouldBlock,
            Some(me) => {
                // One park: its waiters share its claim (`GRef::claim`),
                // which the first case to complete takes.
                for (i, case) in cases.into_iter().enumerate() {
                    let case = case.expect("no case was taken");
                    let s = &mut *guards[lock_of[i]];
                    let w = |msg| Waiter {
                        g: Parker::G(me.clone()),
                        case: nums[i],
                        msg,
                    };
                    match case {
                        Case::Recv(_) => s.recvq.push(w(None)),
                        Case::Send(_, msg) => s.sendq.push(w(Some(msg))),
                    }
                }
                SelectResult::Park
            }
        },
    };
    drop(guards);
    wake_one(wake);
    result
}
