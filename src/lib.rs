//! lugo: a Lua 5.4 runtime in which coroutines are goroutines.
//!
//! This crate is the front door: the command line (`src/main.rs`) and the
//! embedding API below, on top of the scheduler (`lugo-vm`) and the
//! Lua-facing modules (`lugo-stdlib`).
//!
//! A [`Runtime`] runs goroutines on its own threads for as long as the
//! host keeps it: the host runs chunks and functions as goroutines of the
//! main actor and waits for their results ([`Runtime::exec`],
//! [`Runtime::call`], [`Runtime::go`]), starts actors
//! ([`Runtime::spawn_actor`]), talks to goroutines over channels
//! ([`Runtime::channel`]) and finally shuts the runtime down
//! ([`Runtime::shutdown`]). Every failure is an [`Error`].
//!
//! ```no_run
//! let rt = lugo::Runtime::builder().procs(2).build()?;
//! rt.exec("function double(x) time.sleep(0.01) return 2 * x end")?;
//! let double: mlua::Function = rt.lua().globals().get("double")?;
//! let four: i64 = rt.call(&double, 2)?;          // runs as a goroutine
//! assert_eq!(four, 4);
//!
//! let (jobs, inbox) = rt.channel(16);            // the host's ends of a lugo channel
//! rt.lua().globals().set("jobs", &inbox)?;
//! rt.go(rt.lua().load("for n in jobs:range() do print(n) end").into_function()?, ())?;
//! jobs.send(1)?;
//! jobs.close()?;
//! rt.shutdown(lugo::Shutdown::Wait)?;           // every goroutine has ended
//! # Ok::<(), lugo::Error>(())
//! ```
//!
//! For untrusted scripts, [`Builder::sandbox`], [`Builder::memory_limit`]
//! and [`Builder::cpu_budget`] apply to every actor; [`Builder::function`],
//! [`Builder::blocking_function`] and [`Builder::deferred_function`] give
//! every actor the host's functions.
//!
//! ```no_run
//! use std::time::Duration;
//! let rt = lugo::Runtime::builder()
//!     .sandbox(true)
//!     .memory_limit(16 << 20)
//!     .cpu_budget(Duration::from_secs(1))
//!     .function("greet", |_, name: String| Ok(format!("hello, {name}")))
//!     .build()?;
//! let stopped = rt.exec("print(greet('lugo')) while true do end"); // stopped by its budget
//! assert!(matches!(stopped, Err(lugo::Error::Stopped(_))));
//! # Ok::<(), lugo::Error>(())
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod channel;
mod error;
pub mod quit;
mod value;

pub use channel::{Receiver, Reply, Sender};
pub use error::{Error, Result};
pub use lugo_vm::{Config, HostFunction, HostKind, Outcome};
pub use mlua;
pub use value::Value;

use lugo_vm::actor::NO_MAIN_G;
use lugo_vm::endpoint::Endpoint;
use lugo_vm::host::{HostTask, TaskEnd};
use lugo_vm::Actor;
use mlua::chunk::AsChunk;
use mlua::{FromLuaMulti, Function, IntoLuaMulti, Lua, MultiValue};

/// Builds a [`Runtime`].
#[derive(Default)]
pub struct Builder {
    procs: Option<usize>,
    memory_limit: usize,
    sandbox: bool,
    cpu_budget: Option<Duration>,
    host_functions: Vec<HostFunction>,
    on_panic: Option<lugo_vm::sched::PanicHandler>,
    trace: Option<std::path::PathBuf>,
}

impl Builder {
    /// Records a scheduler trace from the build on, written to `path` when
    /// the runtime is dropped: Chrome's trace-event JSON, which
    /// ui.perfetto.dev opens (`lugo --trace`). The recording is the
    /// process's: every runtime of the process is in it.
    pub fn trace(mut self, path: impl Into<std::path::PathBuf>) -> Builder {
        self.trace = Some(path.into());
        self
    }

    /// Number of Ps (`GOMAXPROCS`); default: the number of CPUs.
    pub fn procs(mut self, n: usize) -> Builder {
        self.procs = Some(n);
        self
    }

    /// Limits the memory of every actor, the main one included, to
    /// `bytes` (default 0: no limit): its Lua heap and what the runtime
    /// holds for it (channel buffers, copies of its values in flight,
    /// pending timers, goroutine records, socket buffers), and the actors
    /// it spawns, which draw from its limit. Over it, allocations fail
    /// with Lua's "not enough memory" error, which the script may catch;
    /// the host and other actors go on. `actor.spawn{ f, memory = bytes }`
    /// gives one actor a narrower limit of its own.
    pub fn memory_limit(mut self, bytes: usize) -> Builder {
        self.memory_limit = bytes;
        self
    }

    /// Makes every actor a sandbox for untrusted scripts (default: off):
    /// no `io`, no `os` but `os.time` and `os.clock`, no `debug`, no `net`,
    /// no `loadfile`/`dofile`, `require` finds only `package.preload`, `load`
    /// takes text chunks only, `actor.spawn` takes functions, not paths,
    /// and `runtime.gomaxprocs(n)` cannot change the number of Ps (the
    /// host's threads). Combine with [`Builder::memory_limit`] and
    /// [`Builder::cpu_budget`]; the README's "Sandbox and limits" says what
    /// each bounds.
    pub fn sandbox(mut self, on: bool) -> Builder {
        self.sandbox = on;
        self
    }

    /// Gives every actor at most `budget` of running time (default: no
    /// limit). sysmon watches each running actor's time and stops a
    /// goroutine whose actor is over its budget within about 10 ms: it
    /// raises at its next instruction, wherever it runs (inside a
    /// `table.sort` comparator, a `gsub` callback, a metamethod, a
    /// finalizer) and again at every instruction, so `pcall` cannot save
    /// it. Another actor ends with `cpu budget of ... exceeded` (what its
    /// handle's `wait` returns), the main actor ends the runtime with that
    /// panic (calls waiting for it get [`Error::Stopped`]). The host goes
    /// on. A single C function that runs no Lua (a pathological
    /// `string.find` pattern) is stopped when it returns.
    pub fn cpu_budget(mut self, budget: Duration) -> Builder {
        self.cpu_budget = Some(budget);
        self
    }

    /// What happens to an uncaught error in a goroutine of the main actor
    /// that the host does not wait for (one started by `go`): by default
    /// the runtime ends ([`Outcome::Panic`], Go's rule); with a handler,
    /// the handler gets the `panic: ...` report with the goroutine's stack
    /// and the runtime goes on (the REPL prints it).
    pub fn on_panic(mut self, handler: impl Fn(&str) + Send + Sync + 'static) -> Builder {
        self.on_panic = Some(Arc::new(handler));
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
        self.host_function(name, HostKind::Plain, f)
    }

    /// Like [`Builder::function`], for a function that may wait long (a
    /// query, a file, a lock of the host's): it runs with its P handed off
    /// by sysmon, as `io.read` does, so other actors and timers go on.
    /// (A P is handed off once: while the spare M that took it is itself
    /// in a blocking call, that P waits. So each P absorbs one call in
    /// flight; for many concurrent slow calls, use
    /// [`Builder::deferred_function`], which parks only the goroutine.)
    pub fn blocking_function<A, R, F>(self, name: &str, f: F) -> Builder
    where
        A: FromLuaMulti,
        R: IntoLuaMulti,
        F: Fn(&Lua, A) -> mlua::Result<R> + Send + Sync + 'static,
    {
        self.host_function(name, HostKind::Blocking, f)
    }

    /// Gives every actor a global function `name` that the host answers
    /// later, from any thread: `f` gets the arguments and a [`Reply`], and
    /// returns at once; the calling goroutine parks (its actor and M go on
    /// with other work) until [`Reply::ok`] gives its results or
    /// [`Reply::err`] raises at the caller. An unanswered call holds a
    /// channel end, so its goroutine is not reported as deadlocked.
    pub fn deferred_function<A, F>(self, name: &str, f: F) -> Builder
    where
        A: FromLuaMulti,
        F: Fn(&Lua, A, Reply) -> mlua::Result<()> + Send + Sync + 'static,
    {
        let fname = name.to_string();
        self.host_function(name, HostKind::Answered, move |lua, args: A| {
            let ep = Endpoint::new(&lugo_stdlib::host::runtime_of(lua)?, 1);
            let chan = ep.chan().clone();
            f(lua, args, Reply::new(ep, &fname))?;
            lugo_stdlib::host::chan_value(lua, chan)
        })
    }

    fn host_function<A, R, F>(mut self, name: &str, kind: HostKind, f: F) -> Builder
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
            kind,
            f: Arc::new(call),
        });
        self
    }

    /// Starts the scheduler and makes the main actor with lugo's stdlib.
    pub fn build(self) -> Result<Runtime> {
        let mut config = Config::default();
        if let Some(n) = self.procs {
            config.procs = n;
        }
        config.actor_memory = self.memory_limit;
        config.sandbox = self.sandbox;
        config.cpu_budget = self.cpu_budget;
        config.host_functions = self.host_functions;
        config.on_panic = self.on_panic;
        config.monitor = lugo_sysmon::Debug::from_env();
        config.face = &lugo_stdlib::FACE;
        if self.trace.is_some() {
            lugo_vm::trace::start_trace();
        }
        let vm = lugo_vm::Runtime::new(config);
        let main = vm.new_actor(None, self.memory_limit)?;
        // The main actor lives until the host shuts the runtime down: no
        // goroutine's end ends it (`run` names one).
        main.set_main_g(NO_MAIN_G);
        lugo_stdlib::open(main.lua(), &main)?;
        Ok(Runtime {
            vm,
            main,
            trace: self.trace,
        })
    }
}

/// How [`Runtime::shutdown`] treats goroutines still alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// Wait until every goroutine has ended (or all that are left are
    /// blocked for good: [`Error::Deadlock`]). Channel ends the host
    /// still holds count as work that may come.
    Wait,
    /// Stop now: goroutines still alive are dropped, as Go drops them
    /// when `main` returns.
    Cancel,
    /// Wait at most this long, then cancel.
    WaitFor(Duration),
}

/// A lugo runtime: its scheduler, sysmon and main actor. Dropping it
/// cancels whatever still runs ([`Shutdown::Cancel`]) and frees every
/// actor's Lua state: Lua values taken out of [`Runtime::lua`] must not be
/// used afterwards (as with a dropped [`Lua`]).
pub struct Runtime {
    vm: lugo_vm::Runtime,
    main: Arc<Actor>,
    /// Where the trace goes when it is dropped ([`Builder::trace`]).
    trace: Option<std::path::PathBuf>,
}

impl Runtime {
    /// A builder with the defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The main actor's Lua state: load code, set and read globals. It is
    /// locked for each use, so it may be used while goroutines run (a
    /// use waits for the end of the running goroutine's slice, at most
    /// 10 ms); call Lua functions that may park through [`Runtime::call`].
    pub fn lua(&self) -> &Lua {
        self.main.lua()
    }

    /// Starts `f(args...)` as a goroutine of the main actor; the returned
    /// [`Task`] waits for its results.
    pub fn go(&self, f: Function, args: impl IntoLuaMulti) -> Result<Task> {
        let args = args.into_lua_multi(self.lua())?;
        let task = lugo_stdlib::host::start_task(self.lua(), &self.main, f, args)?;
        Ok(Task {
            task,
            vm: self.vm.clone(),
            actor: self.main.id,
        })
    }

    /// Calls `f(args...)` as a goroutine of the main actor and waits for
    /// its results: `f` may park (channels, `time.sleep`), and other
    /// goroutines run meanwhile.
    ///
    /// The calling thread runs the goroutine itself while a P is free (Go's
    /// cgocallback: no other thread is woken), until it parks; then
    /// an M runs it and this thread waits. Its C stack must have
    /// [`lugo_vm::sched::callin::INLINE_STACK_MIN`] left for that; a
    /// smaller one hands every call to an M.
    pub fn call<R: FromLuaMulti>(&self, f: &Function, args: impl IntoLuaMulti) -> Result<R> {
        let args = args.into_lua_multi(self.lua())?;
        let values = self.call_values(f.clone(), args)?;
        Ok(R::from_lua_multi(values, self.lua())?)
    }

    /// Runs `f(args...)` as a goroutine of the main actor, inline when it
    /// can be ([`Runtime::call`]), and waits for its results.
    fn call_values(&self, f: Function, args: MultiValue) -> Result<MultiValue> {
        if self.lua().exec_raw_lua(|_| self.main.main_thread_busy()) {
            return Err(Error::Lua(mlua::Error::runtime(
                "lugo: Runtime::call from inside a Lua call of the main actor's state on this \
                 thread (Function::call): its goroutine could run nowhere until that call returns \
                 (call the Lua function directly: Function::call)",
            )));
        }
        // Before the goroutine exists: the claimed actor is not queued.
        let inline = self.vm.host_call(&self.main);
        let task = lugo_stdlib::host::start_task(self.lua(), &self.main, f, args)?;
        if let Some(call) = inline {
            call.run(task.gid());
        }
        refuse_reentry(self.main.id)?;
        result(task.take())
    }

    /// Runs a chunk as a goroutine of the main actor and returns what it
    /// returns. Globals it sets stay; goroutines it starts keep running.
    /// As with [`Lua::load`], the chunk is named after the Rust caller's
    /// position; to name it, load it with `rt.lua().load(src).set_name(..)`
    /// and run it with [`Runtime::call`]. (The host is trusted: the
    /// sandbox binds scripts' `load`, not this.)
    #[track_caller]
    pub fn exec(&self, chunk: impl AsChunk) -> Result<MultiValue> {
        let f = self.lua().load(chunk).into_function()?;
        self.call_values(f, MultiValue::new())
    }

    /// Loads the file at `path` as a function of the main actor (chunk
    /// `@path`; a UTF-8 byte order mark and a first line starting with
    /// `#` are skipped, as `lua` does).
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Function> {
        let path = path.as_ref();
        let mut src = std::fs::read(path).map_err(|e| {
            // As lua words it: `cannot open x.lua: No such file or directory`.
            let reason = e.to_string();
            let reason = reason.split(" (os error").next().unwrap_or(&reason);
            mlua::Error::runtime(format!("cannot open {}: {reason}", path.display()))
        })?;
        // As luaL_loadfilex: a UTF-8 byte order mark, then a first line
        // starting with '#', are skipped.
        if src.starts_with(b"\xEF\xBB\xBF") {
            src.drain(..3);
        }
        if src.first() == Some(&b'#') {
            // Keep the newline: line numbers stay right.
            let end = src.iter().position(|&b| b == b'\n').unwrap_or(src.len());
            src.drain(..end);
        }
        let f = self
            .lua()
            .load(src)
            .set_name(format!("@{}", path.display()))
            .into_function()?;
        Ok(f)
    }

    /// Runs the file at `path` as [`Runtime::exec`] runs a chunk.
    pub fn run_file(&self, path: impl AsRef<Path>) -> Result<MultiValue> {
        let f = self.load_file(path)?;
        self.call_values(f, MultiValue::new())
    }

    /// Starts a new actor (an isolated Lua state, in parallel with the
    /// others) running `chunk` with copies of `args`, as
    /// `actor.spawn(f, ...)` in the main actor does; the chunk may capture
    /// nothing. Its refusals ([`Error::Raised`]) are `actor.spawn`'s:
    /// a chunk of bytecode whose function captures more than `_ENV`, an
    /// argument that cannot be copied (a function, a coroutine).
    #[track_caller]
    pub fn spawn_actor(
        &self,
        chunk: impl AsChunk,
        args: impl IntoLuaMulti,
    ) -> Result<ActorHandle<'_>> {
        let body = self.lua().load(chunk).into_function()?;
        let args = args.into_lua_multi(self.lua())?;
        if let Some(o) = self.vm.outcome() {
            return Err(Error::Stopped(o));
        }
        let actor = lugo_stdlib::host::spawn_actor(self.lua(), &self.main, &body, args).map_err(
            |message| Error::Raised {
                message,
                traceback: String::new(),
            },
        )?;
        Ok(ActorHandle { actor, rt: self })
    }

    /// A new channel with room for `cap` values (0: unbuffered), and the
    /// host's two ends of it; give either to Lua (it converts to the
    /// channel) to let goroutines use it.
    pub fn channel(&self, cap: usize) -> (Sender, Receiver) {
        let ep = Endpoint::new(&self.vm, cap);
        (Sender { ep: ep.clone() }, Receiver { ep })
    }

    /// Ends the runtime: waits for its goroutines or cancels them (see
    /// [`Shutdown`]). `Ok` when it ended cleanly (every goroutine done,
    /// cancelled, or `os.exit(0)`); the deadlock or the panic or exit
    /// status that ended it otherwise.
    pub fn shutdown(self, how: Shutdown) -> Result<()> {
        let outcome = match how {
            Shutdown::Wait => self.vm.wait_all(),
            Shutdown::Cancel => self.cancel(),
            Shutdown::WaitFor(d) => {
                let waited = std::thread::scope(|s| {
                    s.spawn(|| self.vm.wait_all());
                    let o = self.vm.wait_timeout(d);
                    if o.is_none() {
                        self.cancel();
                    }
                    o
                });
                waited.unwrap_or(Outcome::Exit(0))
            }
        };
        match outcome {
            Outcome::Exit(0) => Ok(()),
            Outcome::Deadlock(report) => Err(Error::Deadlock(report)),
            other => Err(Error::Stopped(other)),
        }
    }

    fn cancel(&self) -> Outcome {
        self.vm.finish(Outcome::Exit(0));
        self.vm.wait()
    }

    /// How the runtime ended, once it has (`os.exit`, a panic, a CPU
    /// budget); `None` while it runs.
    pub fn outcome(&self) -> Option<Outcome> {
        self.vm.outcome()
    }

    /// Runs `main(args...)` as the program's main goroutine and waits
    /// until the program ends, as `lugo script.lua` does: the main
    /// goroutine returns (`Exit(0)`, other goroutines are dropped), a
    /// goroutine calls `os.exit`, panics, or every goroutine is blocked.
    /// The runtime does not run goroutines afterwards.
    pub fn run(&self, main: Function, args: MultiValue) -> Result<Outcome> {
        // Under the state's lock: no M runs the goroutine before it is main.
        self.lua().exec_raw_lua(|_| -> Result<()> {
            let gid = lugo_stdlib::go_main(self.lua(), &self.main, main, args)?;
            self.vm.set_program_main(&self.main, gid);
            Ok(())
        })?;
        Ok(self.vm.wait())
    }

    /// The goroutines that leaked: parked where nothing that can still
    /// run can ever wake them (see `runtime.leaks()` in docs/api.md).
    /// Every actor is asked (each answers between two goroutines' turns).
    pub fn leaks(&self) -> Vec<lugo_vm::sched::leaks::Leak> {
        self.vm.leaks()
    }

    /// Ends the goroutines of `leaks` still parked where they leaked, as
    /// `runtime.reclaim()` does (their `<close>` handlers run, with the
    /// error `goroutine leaked`); how many.
    pub fn reclaim(&self, leaks: &[lugo_vm::sched::leaks::Leak]) -> usize {
        leaks.iter().filter(|l| self.vm.reclaim(l)).count()
    }

    /// The scheduler.
    pub fn vm(&self) -> &lugo_vm::Runtime {
        &self.vm
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Stop the Ms and sysmon (the first outcome stays), then free the
        // actors' states: goroutines, channels and timers refer to their
        // actors and the actors to the runtime, a cycle only this breaks.
        self.vm.close(Duration::from_secs(1));
        if let Some(path) = &self.trace {
            // Nothing to report it to: a trace that cannot be written is lost.
            let _ = lugo_vm::trace::write(path);
        }
    }
}

/// A goroutine the host waits for ([`Runtime::go`]).
pub struct Task {
    task: Arc<HostTask>,
    vm: lugo_vm::Runtime,
    /// Its actor's id (the main actor's).
    actor: u64,
}

impl Task {
    /// The goroutine's id (as dumps show it).
    pub fn id(&self) -> u64 {
        self.task.gid()
    }

    /// Waits until the goroutine returns (its values), raises
    /// ([`Error::Raised`]), is one of a deadlock ([`Error::Deadlock`]), or
    /// the runtime ends ([`Error::Stopped`]).
    ///
    /// Waiting from inside a host function that a goroutine of the same
    /// actor called (a re-entry: the goroutine would wait for itself, its
    /// M holding the actor) is refused with an error saying so; call the
    /// Lua function directly there (`Function::call`).
    pub fn wait(self) -> Result<MultiValue> {
        self.refuse_reentry()?;
        result(self.task.take())
    }

    /// As [`Task::wait`], for at most `d`; `None` if the goroutine is
    /// still running or parked.
    pub fn wait_timeout(&self, d: Duration) -> Option<Result<MultiValue>> {
        if let Err(e) = self.refuse_reentry() {
            return Some(Err(e));
        }
        self.task
            .wait(Some(std::time::Instant::now() + d))
            .map(result)
    }

    fn refuse_reentry(&self) -> Result<()> {
        refuse_reentry(self.actor)
    }

    /// Asks the goroutine to stop: a running goroutine raises
    /// `interrupted` promptly (its M is signalled), inside C calls and
    /// finalizers too, and again at every instruction until it ends (a
    /// `pcall` cannot keep it alive); a parked one at once, its wait
    /// withdrawn losing nothing (an interrupted send did not send); one in
    /// a blocking call when the call returns. Returns at once.
    pub fn interrupt(&self) {
        self.vm.interrupt(self.task.gid());
    }
}

/// An error if the calling thread is the M running actor `actor` (it
/// would wait for a goroutine of that actor, which cannot run meanwhile).
fn refuse_reentry(actor: u64) -> Result<()> {
    if lugo_vm::actor::running() == actor {
        return Err(Error::Lua(mlua::Error::runtime(
            "lugo: a host function waits for a goroutine of its own actor, which cannot run \
             until the function returns (call the Lua function directly: Function::call)",
        )));
    }
    Ok(())
}

fn result(end: TaskEnd) -> Result<MultiValue> {
    match end {
        TaskEnd::Returned(v) => Ok(v),
        TaskEnd::Raised { message, traceback } => Err(Error::Raised { message, traceback }),
        TaskEnd::Deadlock(report) => Err(Error::Deadlock(report)),
        TaskEnd::Stopped(o) => Err(Error::Stopped(o)),
    }
}

/// An actor started by the host ([`Runtime::spawn_actor`]); it borrows
/// the runtime and holds the actor, as a handle in Lua does.
pub struct ActorHandle<'rt> {
    actor: Arc<Actor>,
    rt: &'rt Runtime,
}

impl ActorHandle<'_> {
    /// Waits until the actor ends and its state is closed (its memory
    /// given back): `Ok` when its first goroutine returned,
    /// [`Error::Raised`] with its error when it raised (or was stopped by
    /// its memory limit or CPU budget). No Lua runs for it: the host's
    /// thread blocks. [`Error::Deadlock`] if every goroutine is blocked
    /// for good meanwhile, [`Error::Stopped`] if the runtime ends first.
    pub fn wait(&self) -> Result<()> {
        result(self.rt.vm.wait_actor(&self.actor)).map(|_| ())
    }

    /// The actor's id (`actor.self()` inside it).
    pub fn id(&self) -> Result<u64> {
        Ok(self.actor.id)
    }
}
