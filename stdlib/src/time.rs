//! `time`: sleep, the clock, timers and tickers (Rust half).
//!
//! Every timer lives in the runtime's one timer heap ([`lugo_vm::timer`]);
//! a Lua timer object holds a [`TimerUd`] that knows how to re-arm it.

use std::ffi::{c_int, CStr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lugo_vm::clock::{now_ns, now_secs, secs_to_ns};
use lugo_vm::mem::{Charge, TIMER_BYTES};
use lugo_vm::timer::{TimerAction, TimerId};
use lugo_vm::{Actor, Chan, WaitReason};
use mlua::{ffi, Lua, Table, UserData, Value};

use crate::cfn::{self, actor, guard, CFn, Ret, CANNOT_PARK};
use crate::chan::chan_value;
use crate::{arg, number_arg, raise, raw, ret, type_name, Raise};

/// A timer, ticker or afterfunc as held by its Lua object.
pub struct TimerUd {
    id: Mutex<TimerId>,
    period: u64,
    action: TimerAction,
}

impl UserData for TimerUd {}

static NEXT_TASK: AtomicU64 = AtomicU64::new(1);

fn duration(v: &Value, fname: &str) -> Result<f64, Raise> {
    let d = number_arg(v, &format!("{fname}: duration"))?;
    if d.is_nan() {
        return raise(format!("{fname}: duration must not be NaN"));
    }
    Ok(d)
}

fn timer_arg(v: &Value, fname: &str) -> Result<mlua::UserDataRef<TimerUd>, Raise> {
    if let Value::UserData(ud) = v {
        if let Ok(t) = ud.borrow::<TimerUd>() {
            return Ok(t);
        }
    }
    raise(format!("{fname}: timer expected, got {}", type_name(v)))
}

/// Arms a timer `d` seconds from now (repeating every `period` ns if
/// non-zero) and returns the userdata that can stop and re-arm it. The
/// timer is charged to the actor while it is pending.
fn start_timer(
    lua: &Lua,
    a: &Arc<Actor>,
    fname: &str,
    d: f64,
    period: u64,
    action: TimerAction,
) -> Result<mlua::AnyUserData, Raise> {
    let charge = timer_charge(a, fname)?;
    let ud = lua.create_userdata(TimerUd {
        id: Mutex::new(0),
        period,
        action: action.clone(),
    })?;
    let when = now_ns().saturating_add(secs_to_ns(d));
    let id = a.runtime().add_timer(when, period, action, charge);
    *ud.borrow::<TimerUd>()?.id.lock().expect("timer poisoned") = id;
    Ok(ud)
}

/// The charge of one pending timer of `a`'s.
fn timer_charge(a: &Arc<Actor>, fname: &str) -> Result<Charge, Raise> {
    a.account()
        .charge(TIMER_BYTES)
        .or_else(|_| raise(format!("{fname}: not enough memory")))
}

/// Registry key of the prelude's `sleep_ctx` (`time.sleep(d, ctx)`).
pub(crate) const SLEEP_CTX: &CStr = c"lugo.sleep_ctx";

/// `time.sleep(d [, ctx])`.
unsafe extern "C-unwind" fn sleep(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. Argument 1 is read, or
    // its type named (inert); `me` needs the running thread of an actor owned
    // by this M: Lua runs an actor's code on its M only. Given a userdata
    // (a context, else `sleep_ctx` raises) at 2 with a number at 1, the
    // call goes to the prelude's `sleep_ctx` (`delegate`, as the last act,
    // nothing owned); another extra argument is ignored.
    unsafe {
        if ffi::lua_type(l, 2) == ffi::LUA_TUSERDATA && ffi::lua_type(l, 1) == ffi::LUA_TNUMBER {
            return cfn::delegate(l, SLEEP_CTX, 2);
        }
        guard(l, || {
            let mut isnum = 0;
            let d = ffi::lua_tonumberx(l, 1, &mut isnum);
            if isnum == 0 || ffi::lua_type(l, 1) != ffi::LUA_TNUMBER {
                let t = cfn::type_name(l, 1);
                return cfn::raise(format!("time.sleep: duration must be a number, got {t}"));
            }
            if d.is_nan() {
                return cfn::raise("time.sleep: duration must not be NaN");
            }
            if d <= 0.0 {
                return Ret::N(0);
            }
            let a = actor(l);
            let Some(me) = cfn::me(l, a) else {
                return cfn::raise(CANNOT_PARK);
            };
            let when = now_ns().saturating_add(secs_to_ns(d));
            // Not charged: a sleep is part of its goroutine's record.
            a.runtime()
                .add_timer(when, 0, TimerAction::Wake(me), Charge::NONE);
            Ret::Park(WaitReason::Sleep)
        })
    }
}

/// `time.now()`.
unsafe extern "C-unwind" fn now(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function on `l`, the running thread, which has
    // room for its one result; pushing a number is inert.
    unsafe {
        ffi::lua_pushnumber(l, now_secs());
        1
    }
}

/// The timers that send on a channel when they fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChanTimer {
    /// `time.timer(d)`: fires once; `reset` arms it again.
    Timer,
    /// `time.ticker(d)`: fires every `d`.
    Ticker,
    /// `time.after(d)`: fires once; Lua gets only its channel.
    After,
}

impl ChanTimer {
    /// The Lua function's name, for errors.
    fn name(self) -> &'static str {
        match self {
            ChanTimer::Timer => "time.timer",
            ChanTimer::Ticker => "time.ticker",
            ChanTimer::After => "time.after",
        }
    }

    /// The raw function's name in `P`.
    fn raw_name(self) -> &'static str {
        match self {
            ChanTimer::Timer => "timer_new",
            ChanTimer::Ticker => "ticker_new",
            ChanTimer::After => "after_new",
        }
    }
}

/// The functions the Lua half gets in `P`.
pub(crate) const FUNCTIONS: [(&CStr, CFn); 2] = [(c"sleep", sleep), (c"now", now)];

pub(crate) fn register(lua: &Lua, actor: &Arc<Actor>, p: &Table) -> mlua::Result<()> {
    // timer_new(d), ticker_new(d), after_new(d): each returns the timer
    // userdata and its channel.
    for kind in [ChanTimer::Timer, ChanTimer::Ticker, ChanTimer::After] {
        let a = actor.clone();
        p.set(
            kind.raw_name(),
            raw(lua, move |lua, args| {
                let fname = kind.name();
                let d = duration(arg(&args, 0), fname)?;
                let period = match kind {
                    ChanTimer::Ticker if d <= 0.0 => {
                        return raise("time.ticker: non-positive interval")
                    }
                    ChanTimer::Ticker => secs_to_ns(d).max(1),
                    ChanTimer::Timer | ChanTimer::After => 0,
                };
                let ch = a
                    .account()
                    .charge(Chan::bytes(1))
                    .map(|c| Arc::new(Chan::charged(1, c)))
                    .or_else(|_| raise(format!("{fname}: not enough memory")))?;
                let ud = start_timer(lua, &a, fname, d, period, TimerAction::Send(ch.clone()))?;
                ret(lua, (ud, chan_value(lua, ch)?))
            })?,
        )?;
    }

    // afterfunc_new(d): returns the timer userdata and the task id that the
    // actor's task function will receive when it fires.
    let a = actor.clone();
    p.set(
        "afterfunc_new",
        raw(lua, move |lua, args| {
            let d = duration(arg(&args, 0), "time.afterfunc")?;
            // (pending, f): the prelude's table of callbacks by task id, and
            // the callback. It is recorded before the timer exists: a timer
            // that fires at once posts its task, which may run as soon as
            // this goroutine is preempted, before the Lua half would have
            // recorded it (the task then found nothing and f never ran).
            let (Value::Table(pending), Value::Function(f)) = (arg(&args, 1), arg(&args, 2)) else {
                return raise("time.afterfunc: internal: pending table and function expected");
            };
            let task = NEXT_TASK.fetch_add(1, Ordering::Relaxed);
            pending.raw_set(task, f).map_err(crate::Raise::Lua)?;
            let action = TimerAction::Task(a.clone(), task);
            match start_timer(lua, &a, "time.afterfunc", d, 0, action) {
                Ok(ud) => ret(lua, (ud, task)),
                Err(e) => {
                    pending
                        .raw_set(task, Value::Nil)
                        .map_err(crate::Raise::Lua)?;
                    Err(e)
                }
            }
        })?,
    )?;

    let a = actor.clone();
    p.set(
        "timer_stop",
        raw(lua, move |lua, args| {
            let t = timer_arg(arg(&args, 0), "timer:stop")?;
            let id = *t.id.lock().expect("timer poisoned");
            ret(lua, a.runtime().stop_timer(id))
        })?,
    )?;

    let a = actor.clone();
    p.set(
        "timer_reset",
        raw(lua, move |lua, args| {
            let t = timer_arg(arg(&args, 0), "timer:reset")?;
            let d = duration(arg(&args, 1), "timer:reset")?;
            let when = now_ns().saturating_add(secs_to_ns(d));
            let shared = a.runtime();
            let mut id = t.id.lock().expect("timer poisoned");
            let pending = shared.reset_timer(*id, when);
            if !pending {
                let charge = timer_charge(&a, "timer:reset")?;
                *id = shared.add_timer(when, t.period, t.action.clone(), charge);
            }
            ret(lua, pending)
        })?,
    )?;
    Ok(())
}
