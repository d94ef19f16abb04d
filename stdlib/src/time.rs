//! `time`: sleep, the clock, timers and tickers (Rust half).
//!
//! Every timer lives in the runtime's one timer heap ([`lugo_vm::timer`]);
//! a Lua timer object holds a [`TimerUd`] that knows how to re-arm it.

use std::ffi::{c_int, CStr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lugo_vm::timer::{now_ns, now_secs, secs_to_ns, TimerAction, TimerId};
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
/// non-zero) and returns the userdata that can stop and re-arm it.
fn start_timer(
    lua: &Lua,
    a: &Arc<Actor>,
    d: f64,
    period: u64,
    action: TimerAction,
) -> mlua::Result<mlua::AnyUserData> {
    let when = now_ns().saturating_add(secs_to_ns(d));
    let id = a.rt_shared().add_timer(when, period, action.clone());
    lua.create_userdata(TimerUd {
        id: Mutex::new(id),
        period,
        action,
    })
}

/// `time.sleep(d)`.
unsafe extern "C-unwind" fn sleep(l: *mut ffi::lua_State) -> c_int {
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
        a.rt_shared().add_timer(when, 0, TimerAction::Wake(me));
        Ret::Park(WaitReason::Sleep)
    })
}

/// `time.now()`.
unsafe extern "C-unwind" fn now(l: *mut ffi::lua_State) -> c_int {
    ffi::lua_pushnumber(l, now_secs());
    1
}

/// The functions the Lua half gets in `P`.
pub(crate) const FUNCTIONS: [(&CStr, CFn); 2] = [(c"sleep", sleep), (c"now", now)];

pub(crate) fn register(lua: &Lua, actor: &Arc<Actor>, p: &Table) -> mlua::Result<()> {
    // timer_new(d, kind): kind "timer" | "ticker" | "after"; returns the
    // timer userdata and its channel.
    let a = actor.clone();
    p.set(
        "timer_new",
        raw(lua, move |lua, args| {
            let kind = match arg(&args, 1) {
                Value::String(s) => s.to_string_lossy(),
                _ => String::new(),
            };
            let fname = format!("time.{kind}");
            let d = duration(arg(&args, 0), &fname)?;
            let period = if kind == "ticker" {
                if d <= 0.0 {
                    return raise("time.ticker: non-positive interval");
                }
                secs_to_ns(d).max(1)
            } else {
                0
            };
            let ch = Arc::new(Chan::new(1));
            let ud = start_timer(lua, &a, d, period, TimerAction::Send(ch.clone()))?;
            ret(lua, (ud, chan_value(lua, ch)?))
        })?,
    )?;

    // afterfunc_new(d): returns the timer userdata and the task id that the
    // actor's task function will receive when it fires.
    let a = actor.clone();
    p.set(
        "afterfunc_new",
        raw(lua, move |lua, args| {
            let d = duration(arg(&args, 0), "time.afterfunc")?;
            let task = NEXT_TASK.fetch_add(1, Ordering::Relaxed);
            let ud = start_timer(lua, &a, d, 0, TimerAction::Task(a.clone(), task))?;
            ret(lua, (ud, task))
        })?,
    )?;

    let a = actor.clone();
    p.set(
        "timer_stop",
        raw(lua, move |lua, args| {
            let t = timer_arg(arg(&args, 0), "timer:stop")?;
            let id = *t.id.lock().expect("timer poisoned");
            ret(lua, a.rt_shared().timers.stop(id))
        })?,
    )?;

    let a = actor.clone();
    p.set(
        "timer_reset",
        raw(lua, move |lua, args| {
            let t = timer_arg(arg(&args, 0), "timer:reset")?;
            let d = duration(arg(&args, 1), "timer:reset")?;
            let when = now_ns().saturating_add(secs_to_ns(d));
            let shared = a.rt_shared();
            let mut id = t.id.lock().expect("timer poisoned");
            let pending = shared.reset_timer(*id, when);
            if !pending {
                *id = shared.add_timer(when, t.period, t.action.clone());
            }
            ret(lua, pending)
        })?,
    )?;
    Ok(())
}
