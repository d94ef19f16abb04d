//! lugo: a Lua 5.4 runtime in which coroutines are goroutines.
//!
//! This crate is the front door: the command line (`src/main.rs`) and the
//! embedding API below, on top of the scheduler (`lugo-vm`) and the
//! Lua-facing modules (`lugo-stdlib`).
//!
//! ```no_run
//! let rt = lugo::Runtime::builder().procs(2).build()?;
//! let main = rt.lua().load("go(function() print('hi') end) time.sleep(0.01)").into_function()?;
//! let outcome = rt.run(main, mlua::MultiValue::new())?;
//! assert_eq!(outcome.code(), 0);
//! # Ok::<(), mlua::Error>(())
//! ```
//!
//! For untrusted scripts, [`Builder::sandbox`], [`Builder::memory_limit`]
//! and [`Builder::cpu_budget`] apply to every actor; [`Builder::function`]
//! and [`Builder::blocking_function`] give every actor the host's functions.
//!
//! ```no_run
//! use std::time::Duration;
//! let rt = lugo::Runtime::builder()
//!     .sandbox(true)
//!     .memory_limit(16 << 20)
//!     .cpu_budget(Duration::from_secs(1))
//!     .function("greet", |_, name: String| Ok(format!("hello, {name}")))
//!     .build()?;
//! let script = rt.lua().load("print(greet('lugo')) while true do end").into_function()?;
//! let outcome = rt.run(script, mlua::MultiValue::new())?; // stopped by its budget
//! assert_eq!(outcome.code(), 2);
//! # Ok::<(), mlua::Error>(())
//! ```

#![warn(clippy::undocumented_unsafe_blocks)]

use std::sync::Arc;
use std::time::Duration;

pub mod quit;

pub use lugo_vm::{Config, HostFunction, Outcome};
pub use mlua;

use lugo_vm::Actor;
use mlua::{FromLuaMulti, Function, IntoLuaMulti, Lua, MultiValue};

/// Builds a [`Runtime`].
#[derive(Default)]
pub struct Builder {
    procs: Option<usize>,
    memory_limit: usize,
    sandbox: bool,
    cpu_budget: Option<Duration>,
    host_functions: Vec<HostFunction>,
}

impl Builder {
    /// Number of Ps (`GOMAXPROCS`); default: the number of CPUs.
    pub fn procs(mut self, n: usize) -> Builder {
        self.procs = Some(n);
        self
    }

    /// Limits the Lua heap of every actor, the main one included, to
    /// `bytes` (default 0: no limit). Over it, allocations fail with Lua's
    /// "not enough memory" error, which the script may catch; the host and
    /// other actors go on. `actor.spawn{ f, memory = bytes }` sets one
    /// actor's own limit.
    pub fn memory_limit(mut self, bytes: usize) -> Builder {
        self.memory_limit = bytes;
        self
    }

    /// Makes every actor a sandbox for untrusted scripts (default: off):
    /// no `io`, no `os` but `os.time` and `os.clock`, no `debug`, no `net`,
    /// no `loadfile`/`dofile`, `require` finds only `package.preload`, `load`
    /// takes text chunks only, and `actor.spawn` takes functions, not
    /// paths. Combine with [`Builder::memory_limit`].
    pub fn sandbox(mut self, on: bool) -> Builder {
        self.sandbox = on;
        self
    }

    /// Gives every actor at most `budget` of running time (default: no
    /// limit). sysmon preempts a goroutine that runs 10 ms; an actor found
    /// over its budget then is stopped: another actor ends with
    /// `cpu budget of ... exceeded` (what its handle's `wait` returns), the
    /// main actor ends the run with that panic. The host goes on.
    pub fn cpu_budget(mut self, budget: Duration) -> Builder {
        self.cpu_budget = Some(budget);
        self
    }

    /// Gives every actor a global function `name` that calls `f` with the
    /// calling actor's state, in the style of [`Lua::create_function`].
    /// It runs on the goroutine's M while its actor waits: keep it short,
    /// or use [`Builder::blocking_function`]. Arguments that do not
    /// convert to `A` raise `name: ...`; an `Err` from `f` is a Lua error.
    pub fn function<A, R, F>(self, name: &str, f: F) -> Builder
    where
        A: FromLuaMulti,
        R: IntoLuaMulti,
        F: Fn(&Lua, A) -> mlua::Result<R> + Send + Sync + 'static,
    {
        self.host_function(name, false, f)
    }

    /// Like [`Builder::function`], for a function that may wait long (a
    /// query, a file, a lock of the host's): it runs with its P handed off
    /// by sysmon, as `io.read` does, so other actors and timers go on.
    pub fn blocking_function<A, R, F>(self, name: &str, f: F) -> Builder
    where
        A: FromLuaMulti,
        R: IntoLuaMulti,
        F: Fn(&Lua, A) -> mlua::Result<R> + Send + Sync + 'static,
    {
        self.host_function(name, true, f)
    }

    fn host_function<A, R, F>(mut self, name: &str, blocking: bool, f: F) -> Builder
    where
        A: FromLuaMulti,
        R: IntoLuaMulti,
        F: Fn(&Lua, A) -> mlua::Result<R> + Send + Sync + 'static,
    {
        let fname = name.to_string();
        let call = move |lua: &Lua, args: MultiValue| {
            let a = A::from_lua_multi(args, lua)
                .map_err(|e| mlua::Error::runtime(format!("{fname}: {e}")))?;
            f(lua, a)?.into_lua_multi(lua)
        };
        self.host_functions.push(HostFunction {
            name: name.to_string(),
            blocking,
            f: Arc::new(call),
        });
        self
    }

    /// Starts the scheduler and makes the main actor with lugo's stdlib.
    pub fn build(self) -> mlua::Result<Runtime> {
        let mut config = Config::default();
        if let Some(n) = self.procs {
            config.procs = n;
        }
        config.actor_memory = self.memory_limit;
        config.sandbox = self.sandbox;
        config.cpu_budget = self.cpu_budget;
        config.host_functions = self.host_functions;
        let vm = lugo_vm::Runtime::new(config);
        lugo_sysmon::start(vm.clone(), lugo_sysmon::Debug::from_env());
        let main = vm.new_actor(lugo_vm::new_lua())?;
        lugo_stdlib::open(main.lua(), &main)?;
        if self.memory_limit > 0 {
            main.set_memory_limit(self.memory_limit)?;
        }
        Ok(Runtime { vm, main })
    }
}

/// A lugo runtime with its main actor.
pub struct Runtime {
    vm: lugo_vm::Runtime,
    main: Arc<Actor>,
}

impl Runtime {
    /// A builder with the defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The main actor's Lua state, to load code and set globals before
    /// [`Runtime::run`]. While goroutines run, only the scheduler may use it.
    pub fn lua(&self) -> &Lua {
        self.main.lua()
    }

    /// Runs `main(args...)` as the main goroutine (goroutine 1) and waits
    /// until the program ends: the main goroutine returns (`Exit(0)`), a
    /// goroutine calls `os.exit`, panics, or every goroutine is blocked.
    pub fn run(&self, main: Function, args: MultiValue) -> mlua::Result<Outcome> {
        lugo_stdlib::go(self.lua(), main, args)?;
        Ok(self.vm.wait())
    }

    /// The scheduler.
    pub fn vm(&self) -> &lugo_vm::Runtime {
        &self.vm
    }
}
