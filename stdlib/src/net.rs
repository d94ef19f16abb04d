//! `net`: TCP and UDP sockets that park only their goroutine (Rust half,
//! C functions; see [`crate::cfn`] and `lugo_vm::netpoll`).
//!
//! One Rust type, [`NetSock`], of three kinds ([`Kind`]: connection,
//! listener, UDP socket), each with its own metatable and methods; a
//! method of another kind raises, found or called (`conn:read: read on a
//! listener`). A socket's kind never changes.
//!
//! Every socket is nonblocking and registered with the runtime's poller.
//! An operation tries the system call; if it would block, the goroutine
//! adds a waiter (and a deadline timer when `settimeout` asked for one),
//! parks, and on waking retries in the continuation of its C function.
//! I/O failures are results (`nil, "eof"`, `nil, "timeout"`,
//! `nil, "closed"`, `nil, "connection refused"`); a caller's mistake (a
//! wrong argument type) is a Lua error.
//!
//! Under `lugo_vm::ffi`'s rules: a socket's locks are never held across a
//! Lua call (what a body reads under a lock it returns as plain data, and
//! pushes after the guard is gone), bytes read are pushed with
//! `push_owned`, a failure is returned as [`Ret::Fail`] (pushed by `guard`
//! once every value of the body is dropped: an `io::Error`, an address, a
//! lock guard), the Rust work of opening a socket runs in plain functions
//! that return plain data ([`listen`], [`dial`]), and a new socket's
//! userdata is allocated before the socket exists, while nothing is owned
//! (a raise cannot leak its descriptor).
//!
//! Bounded work: `read` returns at most [`READ_MAX`] bytes a call; a
//! `readline` scans each byte once and fails with `nil, "line too long"`
//! past its limit ([`LINE_MAX`] unless given), as Go's
//! `bufio.ErrTooLong`.

use std::cell::RefCell;
use std::ffi::{c_int, CStr};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use lugo_vm::clock::{now_ns, secs_to_ns};
use lugo_vm::mem::{Account, Charge, NoMemory};
use lugo_vm::netpoll::{Dir, IoWaiter, Readiness};
use lugo_vm::timer::TimerAction;
use lugo_vm::wake::IoWake;
use lugo_vm::{Actor, Runtime, WaitReason};
use mlua::ffi;

use crate::cfn::{
    actor, check, expected, fill, guard, me, new_box_of, push_owned, raise, raise_if_wake_error,
    type_name, Boxed, CFn, Raw, Ret, CANNOT_PARK, MT_NET,
};
use crate::context::Ctx;

/// The most bytes one `read` returns (it returns "up to n").
pub(crate) const READ_MAX: usize = 64 << 10;

/// The longest line `readline` returns by default (Go's `bufio.Scanner`
/// stops at 64 KiB; lugo allows longer lines, with a limit all the same).
pub(crate) const LINE_MAX: usize = 1 << 20;

enum Sock {
    Listener(TcpListener),
    Stream(TcpStream),
    Udp(UdpSocket),
}

/// What a socket is, for good (a closed one still is): each kind has its
/// own metatable and methods ([`Raw::KINDS`]), so tab completion offers a
/// listener only a listener's methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Conn = 0,
    Listener = 1,
    Udp = 2,
}

impl Kind {
    /// Its `__name`, and the prefix of its methods' names in errors.
    fn name(self) -> &'static str {
        match self {
            Kind::Conn => "conn",
            Kind::Listener => "listener",
            Kind::Udp => "udp",
        }
    }

    /// As an error names it: `read on a listener`.
    fn called(self) -> &'static str {
        match self {
            Kind::Conn => "a connection",
            Kind::Listener => "a listener",
            Kind::Udp => "a UDP socket",
        }
    }

    fn of(sock: &Sock) -> Kind {
        match sock {
            Sock::Listener(_) => Kind::Listener,
            Sock::Stream(_) => Kind::Conn,
            Sock::Udp(_) => Kind::Udp,
        }
    }
}

/// A listener, a connection or a UDP socket.
pub struct NetSock {
    rt: Runtime,
    key: usize,
    /// Its readable edges (a read that would find nothing is not tried).
    readiness: Arc<Readiness>,
    kind: Kind,
    /// Moved to another actor ([`NetSock::move_to`]): its methods raise.
    moved: AtomicBool,
    /// `None` once closed (the descriptor is closed with it).
    sock: Mutex<Option<Sock>>,
    closed: AtomicBool,
    /// Deadline for each following operation, ns (0: none).
    timeout: AtomicU64,
    /// Bytes read past the last line (`readline`).
    rbuf: Mutex<ReadBuf>,
    /// Ends each following operation when it ends (`setcontext`).
    ctx: Mutex<Option<Arc<Ctx>>>,
    /// `ctx` is set: without one, an operation takes no lock for it.
    has_ctx: AtomicBool,
}

impl NetSock {
    /// What the REPL shows of it: `conn 127.0.0.1:5000 -> 127.0.0.1:41000`,
    /// `listener 127.0.0.1:7000`, `udp 127.0.0.1:9000`, `conn (closed)`.
    pub(crate) fn describe(&self) -> String {
        let name = self.kind.name();
        let g = self.lock();
        let Some(sock) = g.as_ref() else {
            return format!("{name} (closed)");
        };
        let show =
            |a: io::Result<std::net::SocketAddr>| a.map_or("?".to_string(), |a| a.to_string());
        match sock {
            Sock::Listener(l) => format!("{name} {}", show(l.local_addr())),
            Sock::Stream(s) => {
                format!("{name} {} -> {}", show(s.local_addr()), show(s.peer_addr()))
            }
            Sock::Udp(u) => match u.peer_addr() {
                Ok(p) => format!("{name} {} -> {p}", show(u.local_addr())),
                Err(_) => format!("{name} {}", show(u.local_addr())),
            },
        }
    }
}

/// What `readline` has read but not returned.
struct ReadBuf {
    bytes: Vec<u8>,
    /// How many of `bytes` are known to hold no newline: each byte is
    /// scanned once, however many reads a long line takes.
    scanned: usize,
    /// The buffer's capacity, charged to the socket's actor.
    charge: Charge,
}

impl ReadBuf {
    /// Appends `b`, charging the buffer's growth; refused past the limit.
    fn append(&mut self, b: &[u8]) -> Result<(), NoMemory> {
        let need = self.bytes.len() + b.len();
        if need > self.charge.bytes() {
            let grown = need.max(2 * self.charge.bytes());
            self.charge.grow(grown - self.charge.bytes())?;
        }
        self.bytes.extend_from_slice(b);
        Ok(())
    }

    /// Takes up to `n` bytes from the front.
    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.bytes.len());
        self.scanned = self.scanned.saturating_sub(n);
        self.bytes.drain(..n).collect()
    }

    /// The next line, without its `\n` (and `\r`), if one is complete.
    fn line(&mut self) -> Option<Vec<u8>> {
        let at = self.bytes[self.scanned..].iter().position(|&b| b == b'\n');
        let Some(i) = at.map(|i| i + self.scanned) else {
            self.scanned = self.bytes.len();
            return None;
        };
        let mut line = self.take(i + 1);
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        self.scanned = 0;
        Some(line)
    }
}

impl Raw for NetSock {
    // Kinds in `Kind`'s order.
    const NAME: &'static CStr = c"lugo.net.conn";
    const SHORT: &'static str = "conn";
    const KINDS: &'static [(&'static CStr, &'static str)] =
        &[(c"lugo.net.listener", "listener"), (c"lugo.net.udp", "udp")];
    const MAGIC: u64 = 0x6c75_676f_736f_636b;
    const MT_UPVALUE: c_int = MT_NET;

    fn short(&self) -> &'static str {
        self.kind.name()
    }
}

impl NetSock {
    /// Makes `sock` nonblocking and registers it with the poller. The
    /// registration is the last step that can fail: a socket dropped on an
    /// error was never registered (closing it leaves no stale entry).
    fn new(rt: Runtime, account: &Arc<Account>, sock: Sock) -> io::Result<NetSock> {
        let charge = account
            .charge(0)
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "not enough memory"))?;
        let fd = match &sock {
            Sock::Listener(l) => {
                l.set_nonblocking(true)?;
                l.as_raw_fd()
            }
            Sock::Stream(s) => {
                s.set_nonblocking(true)?;
                let _ = s.set_nodelay(true);
                s.as_raw_fd()
            }
            Sock::Udp(u) => {
                u.set_nonblocking(true)?;
                u.as_raw_fd()
            }
        };
        // SAFETY: the descriptor stays open inside `sock`, moved into the
        // `NetSock` below with nothing that can fail in between, until
        // `close` (or drop) has deregistered it; if the registration fails,
        // nothing is registered and `sock` is closed on return.
        let (key, readiness) = unsafe { rt.netpoll().register(fd)? };
        let kind = Kind::of(&sock);
        Ok(NetSock::record(
            rt,
            (key, readiness),
            kind,
            Some(sock),
            charge,
        ))
    }

    /// A socket that is closed from the start (one moved whose descriptor
    /// was gone by then): its methods find it closed.
    fn closed(rt: Runtime, kind: Kind) -> NetSock {
        NetSock::record(rt, (usize::MAX, Arc::default()), kind, None, Charge::NONE)
    }

    /// The record of a socket registered as `key` (`sock`: `None`, closed).
    fn record(
        rt: Runtime,
        (key, readiness): (usize, Arc<Readiness>),
        kind: Kind,
        sock: Option<Sock>,
        charge: Charge,
    ) -> NetSock {
        NetSock {
            rt,
            key,
            readiness,
            kind,
            moved: AtomicBool::new(false),
            closed: AtomicBool::new(sock.is_none()),
            sock: Mutex::new(sock),
            timeout: AtomicU64::new(0),
            rbuf: Mutex::new(ReadBuf {
                bytes: Vec::new(),
                scanned: 0,
                charge,
            }),
            ctx: Mutex::new(None),
            has_ctx: AtomicBool::new(false),
        }
    }

    /// Moves the socket to actor `to` (it was sent over a channel or given
    /// to a spawned actor, and is received there): this handle is left
    /// moved (goroutines waiting on it wake as by a close; its methods
    /// raise), and the returned one owns the descriptor, registered anew,
    /// with what was read but not returned and the timeout. A socket
    /// closed or moved by then arrives closed.
    pub(crate) fn move_to(&self, to: &Arc<Actor>) -> Arc<NetSock> {
        let rt = to.runtime().clone();
        let taken = match self.closed.swap(true, Ordering::AcqRel) {
            true => None,
            false => {
                self.moved.store(true, Ordering::Release);
                self.rt.netpoll().deregister(self.key);
                self.lock().take()
            }
        };
        let Some(sock) = taken else {
            return Arc::new(NetSock::closed(rt, self.kind));
        };
        let bytes = std::mem::take(&mut self.rbuf().bytes);
        let moved = NetSock::new(rt.clone(), to.account(), sock).and_then(|s| {
            s.timeout
                .store(self.timeout.load(Ordering::Relaxed), Ordering::Relaxed);
            s.set_ctx(self.ctx());
            s.rbuf()
                .append(&bytes)
                .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "not enough memory"))?;
            Ok(s)
        });
        // Refused (the receiver's memory limit): the descriptor is closed.
        Arc::new(moved.unwrap_or_else(|_| NetSock::closed(rt, self.kind)))
    }

    /// Its kind's number among `NetSock`'s metatables (`new_box_of`).
    pub(crate) fn kind(&self) -> usize {
        self.kind as usize
    }

    fn lock(&self) -> MutexGuard<'_, Option<Sock>> {
        self.sock.lock().expect("socket poisoned")
    }

    /// Deregisters (waking its waiters with "closed"), then closes.
    fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.rt.netpoll().deregister(self.key);
            drop(self.lock().take());
        }
    }

    fn rbuf(&self) -> MutexGuard<'_, ReadBuf> {
        self.rbuf.lock().expect("read buffer poisoned")
    }

    fn ctx(&self) -> Option<Arc<Ctx>> {
        if !self.has_ctx.load(Ordering::Acquire) {
            return None;
        }
        self.ctx.lock().expect("socket context poisoned").clone()
    }

    fn set_ctx(&self, ctx: Option<Arc<Ctx>>) {
        let mut c = self.ctx.lock().expect("socket context poisoned");
        self.has_ctx.store(ctx.is_some(), Ordering::Release);
        *c = ctx;
    }

    /// The error of its context, once that has ended.
    fn ctx_err(&self) -> Option<&'static str> {
        self.ctx().and_then(|c| c.err())
    }

    fn deadline(&self) -> u64 {
        match self.timeout.load(Ordering::Relaxed) {
            0 => 0,
            t => now_ns().saturating_add(t),
        }
    }
}

impl Drop for NetSock {
    fn drop(&mut self) {
        self.close();
    }
}

/// Lua's words for an I/O failure.
fn err_msg(e: &io::Error) -> String {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset | ConnectionAborted => "connection reset".into(),
        BrokenPipe => "broken pipe".into(),
        AddrInUse => "address already in use".into(),
        AddrNotAvailable => "address not available".into(),
        OutOfMemory => "not enough memory".into(),
        TimedOut => "timeout".into(),
        NotConnected => "closed".into(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_lowercase()
        }
    }
}

/// `nil, message`: [`Ret::Fail`], which `guard` pushes once the body has
/// returned (no Lua call here: a body may return it with a lock guard or an
/// `io::Error` alive).
fn fail(msg: impl Into<String>) -> Ret {
    Ret::Fail(msg.into())
}

/// Checks that argument `idx` is a string (copied later, with
/// [`string_at`], once the raising calls are done).
unsafe fn string_check(
    l: *mut ffi::lua_State,
    idx: c_int,
    fname: &str,
    what: &str,
) -> Result<(), Ret> {
    // SAFETY: `l` is the running thread with argument `idx` (the callers'
    // contract, C function bodies); its type is read, or named: inert.
    unsafe {
        if ffi::lua_type(l, idx) != ffi::LUA_TSTRING {
            let t = type_name(l, idx);
            return Err(raise(format!("{fname}: {what} must be a string, got {t}")));
        }
        Ok(())
    }
}

/// A copy of the string at `idx` (checked by [`string_check`]).
unsafe fn string_at(l: *mut ffi::lua_State, idx: c_int) -> String {
    // SAFETY: `l` is the running thread with a string at `idx` and a free
    // stack slot (the callers' contract); `to_display` copies a string
    // without a conversion (no allocation): inert.
    unsafe { crate::cfn::to_display(l, idx) }
}

/// Addresses for "host:port"; a name is resolved as a blocking call.
fn resolve(rt: &Runtime, addr: &str) -> Result<Vec<SocketAddr>, String> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(vec![a]);
    }
    let v = resolve_blocking(rt, addr)
        .map_err(|e| format!("invalid address '{addr}': {}", err_msg(&e)))?;
    if v.is_empty() {
        return Err(format!("invalid address '{addr}': no such host"));
    }
    Ok(v)
}

/// The addresses of `at`, IPv4 first ("localhost" listeners are usually
/// 127.0.0.1), resolved as a blocking call (the P may be handed off).
fn resolve_blocking(rt: &Runtime, at: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let token = rt.enter_syscall();
    let r = at.to_socket_addrs();
    if let Some(p) = token {
        rt.exit_syscall(p);
    }
    let mut v: Vec<SocketAddr> = r?.collect();
    v.sort_by_key(|a| a.is_ipv6());
    Ok(v)
}

unsafe fn sock_arg<'a>(l: *mut ffi::lua_State, fname: &str) -> Result<&'a NetSock, Ret> {
    // SAFETY: the callers' contract is `check`'s: `l` is running a closure
    // made by `Registry`, with the socket at 1, and the borrow lives no
    // longer than argument 1.
    let s = unsafe { check::<NetSock>(l, 1).ok_or_else(|| expected(l, fname, "socket", 1))? };
    if s.moved.load(Ordering::Acquire) {
        return Err(raise(format!("{fname}: use of a moved connection")));
    }
    Ok(s)
}

/// The socket of kind `want` at argument 1 for method `fname`
/// (`kind:method`): another kind there is a caller's mistake,
/// `conn:read: read on a listener`.
unsafe fn kind_arg<'a>(
    l: *mut ffi::lua_State,
    want: Kind,
    fname: &str,
) -> Result<&'a NetSock, Ret> {
    // SAFETY: as `sock_arg` (the callers' contract).
    let s = unsafe { sock_arg(l, fname)? };
    if s.kind != want {
        let method = fname.split_once(':').map_or(fname, |(_, m)| m);
        return Err(raise(format!("{fname}: {method} on {}", s.kind.called())));
    }
    Ok(s)
}

/// The connection at argument 1 (see [`kind_arg`]).
unsafe fn conn_arg<'a>(l: *mut ffi::lua_State, fname: &str) -> Result<&'a NetSock, Ret> {
    // SAFETY: as `sock_arg` (the callers' contract).
    unsafe { kind_arg(l, Kind::Conn, fname) }
}

/// Parks the goroutine until `dir` is ready on `s` (or the deadline),
/// then continues in `k` with `deadline` as context.
unsafe fn park_io(
    l: *mut ffi::lua_State,
    s: &NetSock,
    dir: Dir,
    deadline: u64,
    k: ffi::lua_KFunction,
) -> Ret {
    // SAFETY: `l` is the running thread of a socket function's closure (made
    // by `Registry`), and `s` is borrowed from a value on its stack (the
    // callers' contract); `me` needs the running thread of an actor owned by
    // this M: Lua runs an actor's code on its M only. No Lua call is made
    // here but inert ones (reading upvalues, `can_park`): the park, the retry
    // or the failure is returned, for `guard` to carry out once `w`, `ctx`, `e` and
    // the caller's values are dropped.
    unsafe {
        let a = actor(l);
        let Some(g) = me(l, a) else {
            return raise(CANNOT_PARK);
        };
        let w = IoWaiter::new(g);
        let ctx = s.ctx();
        if let Some(err) = ctx.as_ref().and_then(|c| c.err()) {
            return fail(err);
        }
        match s.rt.netpoll().arm(s.key, dir, w.clone()) {
            Ok(true) => {}
            // Ready since the failed attempt: retry at once, as a wake would.
            Ok(false) => return Ret::Retry(deadline as ffi::lua_KContext, k),
            Err(e) => return fail(err_msg(&e)),
        }
        if let Some(ctx) = ctx {
            ctx.watch(&w);
        }
        if deadline != 0 {
            let id = s.rt.add_timer(
                deadline,
                0,
                TimerAction::Expire(Arc::new(w.clone())),
                Charge::NONE,
            );
            w.set_timer(id);
        }
        Ret::ParkK(WaitReason::IoWait, deadline as ffi::lua_KContext, k)
    }
}

/// The wake a continuation finds on top of the stack (popped).
unsafe fn take_wake(l: *mut ffi::lua_State) -> IoWake {
    // SAFETY: `l` is the running thread of a socket continuation, with the
    // wake's code on top (the callers' contract: `after_wake` and `dial_k`,
    // which Lua calls after a park, or `guard` for a `Retry`); reading and
    // popping it are inert.
    unsafe {
        let code = ffi::lua_tointegerx(l, -1, std::ptr::null_mut());
        ffi::lua_pop(l, 1);
        match code {
            2 => IoWake::Timeout,
            3 => IoWake::Closed,
            4 => IoWake::Canceled,
            _ => IoWake::Ready,
        }
    }
}

/// Common continuation prologue: `Some(ret)` ends the operation.
unsafe fn after_wake(l: *mut ffi::lua_State) -> Option<Ret> {
    // SAFETY: as `take_wake` (the caller's contract); a failure is returned,
    // for `guard` to push. The socket at 1 is read for its context's error
    // (the borrow ends at once).
    unsafe {
        match take_wake(l) {
            IoWake::Ready => None,
            IoWake::Timeout => Some(fail("timeout")),
            IoWake::Closed => Some(fail("closed")),
            IoWake::Canceled => Some(fail(
                check::<NetSock>(l, 1)
                    .and_then(|s| s.ctx_err())
                    .unwrap_or(crate::context::CANCELED),
            )),
        }
    }
}

macro_rules! continuation {
    ($name:ident, $body:ident) => {
        unsafe extern "C-unwind" fn $name(
            l: *mut ffi::lua_State,
            _status: c_int,
            ctx: ffi::lua_KContext,
        ) -> c_int {
            // SAFETY: Lua calls this continuation of a socket method (a
            // closure made by `Registry`) on its thread, with the method's
            // stack and the wake's code on top, or an interrupt's error,
            // raised first with nothing owned (or `guard` calls it for a
            // `Retry`, with code 1 pushed); `guard` is its last act. That is
            // the contract of `after_wake` and of `$body`, which finds the
            // method's arguments where it left them.
            unsafe {
                raise_if_wake_error(l);
                guard(l, || match after_wake(l) {
                    Some(r) => r,
                    None => $body(l, ctx as u64),
                })
            }
        }
    };
}

// ---------------------------------------------------------------- listen

/// The options of `net.listen(addr, { reuseport = true, backlog = n })`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ListenOpts {
    /// `SO_REUSEPORT`: listeners of several actors (or processes) on one
    /// port, the kernel spreading connections among them.
    reuseport: bool,
    /// The accept queue's length (the kernel caps it at `somaxconn`).
    backlog: i32,
}

impl Default for ListenOpts {
    fn default() -> ListenOpts {
        // Go's default: as long a queue as the system allows.
        ListenOpts {
            reuseport: false,
            backlog: libc::SOMAXCONN,
        }
    }
}

/// Reads `net.listen`'s options table at argument 2 (nil: the defaults).
unsafe fn listen_opts(l: *mut ffi::lua_State) -> Result<ListenOpts, Ret> {
    const F: &str = "net.listen";
    // SAFETY: `l` is the running thread of `net.listen`'s closure with its
    // arguments on the stack and `LUA_MINSTACK` free slots (the caller's
    // contract). The table is walked raw (`lua_next`, no metamethod: no
    // Lua code runs) with the key and value popped in turn; a string key
    // is borrowed in place while it is on the stack (no conversion), and
    // type names are read (inert). The one call that may raise, showing
    // an unknown key (`to_display` converts a number on a copy), runs
    // with nothing owned; the errors are returned, raised by `guard`.
    unsafe {
        let mut o = ListenOpts::default();
        match ffi::lua_type(l, 2) {
            ffi::LUA_TNIL | ffi::LUA_TNONE => return Ok(o),
            ffi::LUA_TTABLE => {}
            _ => {
                let t = type_name(l, 2);
                return Err(raise(format!("{F}: options must be a table, got {t}")));
            }
        }
        ffi::lua_settop(l, 2);
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, 2) != 0 {
            // [addr, opts, key, value]; a string key is read in place
            // (`lua_next` needs it unconverted).
            let mut len = 0usize;
            let key: &[u8] = match ffi::lua_type(l, 3) {
                ffi::LUA_TSTRING => {
                    let p = ffi::lua_tolstring(l, 3, &mut len);
                    std::slice::from_raw_parts(p as *const u8, len)
                }
                _ => b"",
            };
            let wrong = |key: &str, want: &str| {
                let t = type_name(l, 4);
                Err(raise(format!("{F}: {key} must be {want}, got {t}")))
            };
            match key {
                b"reuseport" => {
                    if ffi::lua_type(l, 4) != ffi::LUA_TBOOLEAN {
                        return wrong("reuseport", "a boolean");
                    }
                    o.reuseport = ffi::lua_toboolean(l, 4) != 0;
                }
                b"backlog" => {
                    if ffi::lua_isinteger(l, 4) == 0 {
                        return wrong("backlog", "an integer");
                    }
                    let n = ffi::lua_tointegerx(l, 4, std::ptr::null_mut());
                    if !(1..=65535).contains(&n) {
                        return Err(raise(format!("{F}: backlog must be 1 to 65535, got {n}")));
                    }
                    o.backlog = n as i32;
                }
                _ => {
                    let shown = crate::cfn::to_display(l, 3);
                    return Err(raise(format!(
                        "{F}: unknown option '{shown}' (reuseport, backlog)"
                    )));
                }
            }
            ffi::lua_pop(l, 1);
        }
        Ok(o)
    }
}

/// Binds a listening socket on `at` with `o`.
fn bind_listener(at: SocketAddr, o: ListenOpts) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(at), Type::STREAM, Some(Protocol::TCP))?;
    // As std's and Go's listeners: a restarted server binds at once.
    sock.set_reuse_address(true)?;
    if o.reuseport {
        sock.set_reuse_port(true)?;
    }
    sock.bind(&at.into())?;
    sock.listen(o.backlog)?;
    Ok(sock.into())
}

/// A listener on `addr` for actor `a` (plain Rust: no Lua call): the
/// first of its addresses that binds.
fn listen(a: &Arc<Actor>, addr: &str, o: ListenOpts) -> Result<NetSock, String> {
    bind_first(a, addr, |at| bind_listener(at, o).map(Sock::Listener))
}

/// A socket of actor `a` bound by `bind` to the first of `addr`'s
/// addresses that binds (plain Rust: no Lua call).
fn bind_first(
    a: &Arc<Actor>,
    addr: &str,
    bind: impl Fn(SocketAddr) -> io::Result<Sock>,
) -> Result<NetSock, String> {
    let rt = a.runtime();
    let mut last = None;
    for at in resolve(rt, addr)? {
        match bind(at) {
            Ok(sock) => {
                return NetSock::new(rt.clone(), a.account(), sock).map_err(|e| err_msg(&e))
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| "no address".into(), |e| err_msg(&e)))
}

/// Fills box `b` with the socket made, or gives the failure: the end of
/// a function that makes one.
///
/// # Safety
/// `b` came from `new_box_of`, is still on the stack, and is filled once.
unsafe fn filled(b: *mut Boxed<NetSock>, made: Result<NetSock, String>) -> Ret {
    match made {
        Ok(s) => {
            // SAFETY: the caller's contract is `fill`'s.
            unsafe { fill(b, Arc::new(s)) };
            Ret::N(1)
        }
        Err(msg) => fail(msg),
    }
}

unsafe extern "C-unwind" fn net_listen(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this `Registry` closure on the running thread `l`;
    // `guard` is its last act. The listener's box is allocated (may raise)
    // while nothing is owned, before the address (argument 1, a string) is
    // copied or the socket exists; `listen` makes no Lua call; the box is
    // filled once on top (inert); a failure goes to `guard`, pushed once the
    // address and the error are dropped.
    unsafe {
        guard(l, || {
            if let Err(r) = string_check(l, 1, "net.listen", "address") {
                return r;
            }
            let opts = match listen_opts(l) {
                Ok(o) => o,
                Err(r) => return r,
            };
            ffi::lua_settop(l, 1);
            let b = new_box_of::<NetSock>(l, Kind::Listener as usize);
            let made = listen(actor(l), &string_at(l, 1), opts);
            filled(b, made)
        })
    }
}

unsafe fn accept_body(l: *mut ffi::lua_State, deadline: u64) -> Ret {
    // SAFETY: `l` runs `listener:accept`'s closure with the listener at 1,
    // which stays (the callers' contract). The connection's box is allocated
    // (may raise) while nothing is owned, and filled once at 2; after that
    // only Rust or inert calls (`lua_settop`, `fill`, `park_io`). The lock,
    // the stream and an `io::Error` are dropped when the body returns,
    // before `guard` pushes a failure or parks.
    unsafe {
        let s = match kind_arg(l, Kind::Listener, "listener:accept") {
            Ok(s) => s,
            Err(r) => return r,
        };
        ffi::lua_settop(l, 1);
        let b = new_box_of::<NetSock>(l, Kind::Conn as usize);
        let r = match &*s.lock() {
            Some(Sock::Listener(ls)) => ls.accept(),
            // A listener's record holds a listener, or nothing once closed.
            _ => return fail("closed"),
        };
        match r.and_then(|(conn, _)| {
            NetSock::new(s.rt.clone(), actor(l).account(), Sock::Stream(conn))
        }) {
            Ok(c) => {
                fill(b, Arc::new(c));
                Ret::N(1)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ffi::lua_settop(l, 1);
                park_io(l, s, Dir::Read, deadline, accept_k)
            }
            Err(e) => fail(err_msg(&e)),
        }
    }
}
continuation!(accept_k, accept_body);

/// The entry of a socket method that may park: checks the socket, keeps
/// `nargs` arguments and runs `body` (also its continuation) with the
/// socket's deadline.
unsafe fn sock_method(
    l: *mut ffi::lua_State,
    name: &str,
    nargs: c_int,
    body: unsafe fn(*mut ffi::lua_State, u64) -> Ret,
) -> c_int {
    // SAFETY: `l` is the running thread of a socket method's closure (made by
    // `Registry`), with its arguments on the stack, and this is the C
    // function's last act (the callers' contract), so `guard` is too. The
    // borrow of the socket ends with its deadline; `lua_settop` keeps the
    // `nargs` arguments, and `body`, one of this module's bodies, finds the
    // socket at 1 as it requires.
    unsafe {
        guard(l, || {
            let d = match sock_arg(l, name) {
                Ok(s) => match s.ctx_err() {
                    Some(err) => return fail(err),
                    None => s.deadline(),
                },
                Err(r) => return r,
            };
            ffi::lua_settop(l, nargs);
            body(l, d)
        })
    }
}

unsafe extern "C-unwind" fn sock_accept(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C closure (made by `Registry`) on `l`, the
    // running thread, with its arguments on the stack, and `sock_method` is
    // its last act: that is `sock_method`'s contract.
    unsafe { sock_method(l, "listener:accept", 1, accept_body) }
}

// ---------------------------------------------------------------- dial

unsafe fn dial_body(l: *mut ffi::lua_State, _deadline: u64) -> Ret {
    // SAFETY: `l` is the running thread of `net.dial`'s closure (made by
    // `Registry`), with the connection being made at 3 (the caller's
    // contract: `dial_k`, which Lua calls with `net.dial`'s stack). The
    // connection is borrowed from index 3, on the stack throughout; its lock
    // (a temporary of the `let`) and the `io::Error` are dropped before any
    // Lua call: pushing the connection is inert, and a failure is returned,
    // for `guard` to push.
    unsafe {
        // The connection being made is at index 3.
        let Some(s) = check::<NetSock>(l, 3) else {
            return fail("closed");
        };
        let r = match &*s.lock() {
            Some(Sock::Stream(st)) => Some(match st.take_error() {
                Ok(Some(e)) | Err(e) => Err(e),
                Ok(None) => st.peer_addr().map(|_| ()),
            }),
            _ => None,
        };
        match r {
            None => fail("closed"),
            Some(Ok(())) => {
                // The dial's context governs only the dial (Go's
                // `DialContext`): the connection goes on without it.
                s.set_ctx(None);
                ffi::lua_pushvalue(l, 3);
                Ret::N(1)
            }
            Some(Err(e)) => {
                s.close();
                fail(err_msg(&e))
            }
        }
    }
}

unsafe extern "C-unwind" fn dial_k(
    l: *mut ffi::lua_State,
    _status: c_int,
    ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: Lua calls this continuation of `net.dial` (a closure made by
    // `Registry`) on its thread, with `net.dial`'s stack (the connection at
    // 3) and the wake's code on top, or an interrupt's error, raised first
    // with nothing owned (or `guard` calls it for a `Retry`); `guard` is its
    // last act. That is the contract of `take_wake` and
    // `dial_body`; the borrow of the connection ends with `close`, and a
    // failure is returned, for `guard` to push.
    unsafe {
        raise_if_wake_error(l);
        guard(l, || match take_wake(l) {
            IoWake::Ready => dial_body(l, ctx as u64),
            why => {
                let mut msg = if why == IoWake::Timeout {
                    "timeout"
                } else {
                    "closed"
                };
                if let Some(s) = check::<NetSock>(l, 3) {
                    if why == IoWake::Canceled {
                        msg = s.ctx_err().unwrap_or(crate::context::CANCELED);
                    }
                    s.close();
                }
                fail(msg)
            }
        })
    }
}

/// A connection to `addr` for actor `a`, and whether its connect is still
/// in progress (plain Rust: no Lua call; a socket that fails is closed
/// here).
fn dial(a: &Arc<Actor>, addr: &str) -> Result<(NetSock, bool), String> {
    let rt = a.runtime();
    let target = resolve(rt, addr)?[0];
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(target),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .and_then(|s| s.set_nonblocking(true).map(|()| s))
    .map_err(|e| err_msg(&e))?;
    let pending = match sock.connect(&target.into()) {
        Ok(()) => false,
        Err(e)
            if e.raw_os_error() == Some(libc::EINPROGRESS)
                || e.kind() == io::ErrorKind::WouldBlock =>
        {
            true
        }
        Err(e) => return Err(err_msg(&e)),
    };
    let conn = NetSock::new(rt.clone(), a.account(), Sock::Stream(TcpStream::from(sock)))
        .map_err(|e| err_msg(&e))?;
    Ok((conn, pending))
}

unsafe extern "C-unwind" fn net_dial(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this `Registry` closure on the running thread `l`;
    // `guard` is its last act. The arguments are read (inert) and moved to
    // `[address, context or nil]` (`lua_copy`, `lua_settop`: inert). The
    // connection's box is allocated at 3 (may raise) while nothing is
    // owned, before the address is copied or the socket exists; `dial`
    // makes no Lua call; the box is filled once at 3 and borrowed from there
    // for `park_io` (no raising call), with the stack `dial_k` expects; the
    // context is borrowed from 2 and a reference stored in the connection.
    // `guard` acts once the address, context and error are dropped.
    unsafe {
        guard(l, || {
            if let Err(r) = string_check(l, 1, "net.dial", "address") {
                return r;
            }
            let closure = crate::cfn::Closure::of(l);
            let is_ctx = |i| closure.arc::<Ctx>(l, i).is_some();
            let (timeout, ctx_at) = match ffi::lua_type(l, 2) {
                ffi::LUA_TNIL | ffi::LUA_TNONE => (0, 3),
                ffi::LUA_TNUMBER => (secs_to_ns(ffi::lua_tonumber(l, 2)).max(1), 3),
                _ if is_ctx(2) => (0, 2),
                _ => {
                    let t = type_name(l, 2);
                    return raise(format!("net.dial: timeout or context expected, got {t}"));
                }
            };
            let has_ctx = match ffi::lua_type(l, ctx_at) {
                ffi::LUA_TNIL | ffi::LUA_TNONE => false,
                _ if is_ctx(ctx_at) => true,
                _ => {
                    let t = type_name(l, ctx_at);
                    return raise(format!("net.dial: context expected, got {t}"));
                }
            };
            if !has_ctx {
                ffi::lua_pushnil(l);
                ffi::lua_replace(l, 2);
            } else if ctx_at != 2 {
                ffi::lua_copy(l, ctx_at, 2);
            }
            ffi::lua_settop(l, 2);
            let ctx = closure.arc::<Ctx>(l, 2);
            if let Some(c) = &ctx {
                // Kept by the dial: a hand-out (`lugo_vm::leak`).
                lugo_vm::leak::note_handout(closure.actor(), Arc::as_ptr(c) as usize);
            }
            if let Some(err) = ctx.as_ref().and_then(|c| c.err()) {
                return fail(err);
            }
            // The connection's box, at index 3, before the socket exists.
            let b = new_box_of::<NetSock>(l, Kind::Conn as usize);
            let dialed = dial(actor(l), &string_at(l, 1));
            let pending = match dialed {
                Ok((c, pending)) => {
                    fill(b, Arc::new(c));
                    pending
                }
                Err(msg) => return fail(msg),
            };
            if !pending {
                return Ret::N(1);
            }
            let deadline = if timeout > 0 {
                now_ns().saturating_add(timeout)
            } else {
                0
            };
            let conn = check::<NetSock>(l, 3).expect("just filled");
            conn.set_ctx(ctx);
            park_io(l, conn, Dir::Write, deadline, dial_k)
        })
    }
}

// ---------------------------------------------------------------- read

/// Argument 2, a positive integer named `what` in errors, or `default`.
unsafe fn count_arg(
    l: *mut ffi::lua_State,
    fname: &str,
    what: &str,
    default: usize,
) -> Result<usize, Ret> {
    // SAFETY: `l` is the running thread with argument 2 (the callers'
    // contract, socket method bodies); it is read, or its type named: inert.
    unsafe {
        match ffi::lua_type(l, 2) {
            ffi::LUA_TNIL | ffi::LUA_TNONE => Ok(default),
            ffi::LUA_TNUMBER => {
                let mut isint = 0;
                let n = ffi::lua_tointegerx(l, 2, &mut isint);
                if isint != 0 && n > 0 {
                    Ok(n as usize)
                } else {
                    Err(raise(format!("{fname}: {what} must be a positive integer")))
                }
            }
            _ => {
                let t = type_name(l, 2);
                Err(raise(format!(
                    "{fname}: {what} must be a positive integer, got {t}"
                )))
            }
        }
    }
}

/// One nonblocking read of up to `n` bytes from a stream; not tried
/// when it would surely find nothing (`netpoll`'s invariant 6: the last
/// read came back short and no edge came since), as Go parks a reader
/// whose poller has reported nothing new.
fn read_some(s: &NetSock, n: usize) -> io::Result<Vec<u8>> {
    read_with(s, n, <[u8]>::to_vec)
}

thread_local! {
    /// Where a read lands before it is copied out (no buffer allocated
    /// and zeroed per read). Borrowed only by plain Rust, never across a
    /// Lua call.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; READ_MAX].into_boxed_slice());
}

/// One nonblocking read of up to `n` bytes (at most [`READ_MAX`]), given
/// to `take` (as [`read_some`]).
fn read_with<R>(s: &NetSock, n: usize, take: impl FnOnce(&[u8]) -> R) -> io::Result<R> {
    let n = n.min(READ_MAX);
    SCRATCH.with_borrow_mut(|buf| {
        let k = {
            let mut g = s.lock();
            let Some(Sock::Stream(st)) = &mut *g else {
                return Err(io::Error::new(io::ErrorKind::NotConnected, "closed"));
            };
            if s.readiness.surely_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let token = s.readiness.before_read();
            let r = st.read(&mut buf[..n]);
            match &r {
                Ok(k) if *k > 0 && *k < n => s.readiness.drained(token),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => s.readiness.drained(token),
                _ => {}
            }
            r?
        };
        // The socket's lock is released: `take` may lock its buffer.
        Ok(take(&buf[..k]))
    })
}

unsafe fn read_body(l: *mut ffi::lua_State, deadline: u64) -> Ret {
    // SAFETY: `l` runs `conn:read`'s closure with the connection at 1 (on
    // the stack throughout) and the count at 2 (the callers' contract); a
    // string there is read in place (no conversion) and shown with nothing
    // owned, or replaced by nil (inert) for `readall_body`, whose contract
    // is the same. The
    // socket's and buffer's locks are gone before any Lua call; bytes read
    // are handed off (`push_owned`, the one raising call, nothing else
    // owned); an end, an error or a park goes to `guard` once `b`, `e` and
    // `buffered` are dropped (`park_io` makes no raising call).
    unsafe {
        if ffi::lua_type(l, 2) == ffi::LUA_TSTRING {
            // `read("a")`: everything up to the end, as `readall()`.
            let mut len = 0usize;
            let p = ffi::lua_tolstring(l, 2, &mut len);
            if std::slice::from_raw_parts(p as *const u8, len) != b"a" {
                let shown = crate::cfn::to_display(l, 2);
                return raise(format!(
                    "conn:read: format must be \"a\" or a count, got \"{shown}\""
                ));
            }
            // As `readall()`: no count (its continuation finds none too).
            ffi::lua_pushnil(l);
            ffi::lua_replace(l, 2);
            return readall_body(l, deadline);
        }
        let s = match conn_arg(l, "conn:read") {
            Ok(s) => s,
            Err(r) => return r,
        };
        let n = match count_arg(l, "conn:read", "count", 4096) {
            Ok(n) => n.min(READ_MAX),
            Err(r) => return r,
        };
        let buffered = s.rbuf().take(n);
        if !buffered.is_empty() {
            push_owned(l, buffered);
            return Ret::N(1);
        }
        match read_some(s, n) {
            Ok(b) if b.is_empty() => fail("eof"),
            Ok(b) => {
                push_owned(l, b);
                Ret::N(1)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                park_io(l, s, Dir::Read, deadline, read_k)
            }
            Err(e) => fail(err_msg(&e)),
        }
    }
}
continuation!(read_k, read_body);

unsafe extern "C-unwind" fn sock_read(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C closure (made by `Registry`) on `l`, the
    // running thread, with its arguments on the stack, and `sock_method` is
    // its last act: that is `sock_method`'s contract.
    unsafe { sock_method(l, "conn:read", 2, read_body) }
}

/// What one step of `readline` found.
enum Line {
    Done(Vec<u8>),
    Eof,
    TooLong,
    Block,
    Failed(io::Error),
}

/// What one read into a socket's buffer found.
enum Fill {
    /// Bytes were added to the buffer.
    More,
    /// The stream ended: what the buffer held, taken.
    End(Vec<u8>),
    Block,
    Failed(io::Error),
}

/// One read of up to `n` bytes into `s`'s buffer (charged to its actor).
fn fill_buf(s: &NetSock, n: usize) -> Fill {
    // The bytes go from the scratch buffer to the socket's.
    let r = read_with(s, n, |b| match b.is_empty() {
        true => None,
        false => Some(s.rbuf().append(b)),
    });
    match r {
        Ok(None) => {
            let mut rb = s.rbuf();
            rb.scanned = 0;
            Fill::End(std::mem::take(&mut rb.bytes))
        }
        Ok(Some(Ok(()))) => Fill::More,
        Ok(Some(Err(_))) => Fill::Failed(io::Error::new(
            io::ErrorKind::OutOfMemory,
            "not enough memory",
        )),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Fill::Block,
        Err(e) => Fill::Failed(e),
    }
}

/// Reads until a line is complete, the stream ends or would block.
fn next_line(s: &NetSock, max: usize) -> Line {
    loop {
        let mut rb = s.rbuf();
        if let Some(line) = rb.line() {
            return Line::Done(line);
        }
        if rb.bytes.len() > max {
            return Line::TooLong;
        }
        drop(rb);
        match fill_buf(s, 4096) {
            Fill::More => {}
            // End of stream: the last, unterminated line, then eof.
            Fill::End(rest) if rest.is_empty() => return Line::Eof,
            Fill::End(rest) => return Line::Done(rest),
            Fill::Block => return Line::Block,
            Fill::Failed(e) => return Line::Failed(e),
        }
    }
}

unsafe fn readline_body(l: *mut ffi::lua_State, deadline: u64) -> Ret {
    // SAFETY: `l` is the running thread of `conn:readline`'s closure (made by
    // `Registry`), with the connection at 1 and the limit at 2 (the callers'
    // contract: `sock_method` and `readline_k`). The connection is borrowed
    // from argument 1, on the stack throughout; `next_line` takes and
    // releases the locks without a Lua call; a line is handed off
    // (`push_owned`, the one raising call, with nothing else owned). Any
    // other end, or a park, is returned (`park_io` makes no raising call),
    // for `guard` to carry out once `e`, an `io::Error`, is dropped.
    unsafe {
        let s = match conn_arg(l, "conn:readline") {
            Ok(s) => s,
            Err(r) => return r,
        };
        let max = match count_arg(l, "conn:readline", "max", LINE_MAX) {
            Ok(n) => n,
            Err(r) => return r,
        };
        match next_line(s, max) {
            Line::Done(line) => {
                push_owned(l, line);
                Ret::N(1)
            }
            Line::Eof => fail("eof"),
            Line::TooLong => fail("line too long"),
            Line::Block => park_io(l, s, Dir::Read, deadline, readline_k),
            Line::Failed(e) => fail(err_msg(&e)),
        }
    }
}
continuation!(readline_k, readline_body);

/// What one step of `readall` found.
enum All {
    /// `n` bytes, or everything up to the end when no `n` was asked.
    Done(Vec<u8>),
    /// The stream ended first: what came.
    Short(Vec<u8>),
    Block,
    Failed(io::Error),
}

/// Reads until `n` bytes are buffered (`None`: until the end of the
/// stream) or it would block; the buffer is charged to the actor.
fn next_all(s: &NetSock, n: Option<usize>) -> All {
    loop {
        if let Some(n) = n {
            let mut rb = s.rbuf();
            if rb.bytes.len() >= n {
                return All::Done(rb.take(n));
            }
        }
        match fill_buf(s, READ_MAX) {
            Fill::More => {}
            Fill::End(rest) if n.is_none() => return All::Done(rest),
            Fill::End(rest) => return All::Short(rest),
            Fill::Block => return All::Block,
            Fill::Failed(e) => return All::Failed(e),
        }
    }
}

unsafe fn readall_body(l: *mut ffi::lua_State, deadline: u64) -> Ret {
    // SAFETY: `l` is the running thread of `conn:readall`'s closure (or of
    // `conn:read("a")`'s), with the connection at 1 and the count at 2 (the
    // callers' contract: `sock_method`, `read_body` and `readall_k`). The
    // connection is borrowed from argument 1, on the stack throughout;
    // `next_all` takes and releases the locks without a Lua call; bytes
    // are handed off (`push_owned`) before the pushes of a short read's
    // `nil, "eof"` (which may raise with nothing owned). Any other end, or
    // a park, is returned for `guard` to carry out once `e` is dropped.
    unsafe {
        let s = match conn_arg(l, "conn:readall") {
            Ok(s) => s,
            Err(r) => return r,
        };
        // No count (0 stands for none): up to the end of the stream.
        let n = match count_arg(l, "conn:readall", "count", 0) {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(r) => return r,
        };
        match next_all(s, n) {
            All::Done(b) => {
                push_owned(l, b);
                Ret::N(1)
            }
            All::Short(b) => {
                push_owned(l, b);
                ffi::lua_pushnil(l);
                ffi::lua_insert(l, -2);
                ffi::lua_pushstring(l, c"eof".as_ptr());
                ffi::lua_insert(l, -2);
                Ret::N(3)
            }
            All::Block => park_io(l, s, Dir::Read, deadline, readall_k),
            All::Failed(e) => fail(err_msg(&e)),
        }
    }
}
continuation!(readall_k, readall_body);

unsafe extern "C-unwind" fn sock_readall(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C closure (made by `Registry`) on `l`, the
    // running thread, with its arguments on the stack, and `sock_method` is
    // its last act: that is `sock_method`'s contract.
    unsafe { sock_method(l, "conn:readall", 2, readall_body) }
}

unsafe extern "C-unwind" fn sock_readline(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C closure (made by `Registry`) on `l`, the
    // running thread, with its arguments on the stack, and `sock_method` is
    // its last act: that is `sock_method`'s contract.
    unsafe { sock_method(l, "conn:readline", 2, readline_body) }
}

// ---------------------------------------------------------------- write

/// Writes from the offset kept at stack index 3 until done or blocked.
unsafe fn write_body(l: *mut ffi::lua_State, deadline: u64) -> Ret {
    // A finalizer run by the push of a failure's message may use this
    // socket: its lock must be gone by then.
    // SAFETY: `l` runs `conn:write`'s closure with the connection at 1, the
    // data string at 2 (both borrowed, on the stack throughout) and the
    // offset at 3 (the callers' contract). The only Lua calls are inert
    // (`lua_pushinteger`, `lua_replace` of index 3) and made after the lock
    // guard `g` is gone; `guard` acts once `g` and `e` are dropped.
    unsafe {
        let s = match conn_arg(l, "conn:write") {
            Ok(s) => s,
            Err(r) => return r,
        };
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, 2, &mut len);
        let data = std::slice::from_raw_parts(p as *const u8, len);
        let mut off = ffi::lua_tointegerx(l, 3, std::ptr::null_mut()) as usize;
        while off < len {
            let r = {
                let mut g = s.lock();
                match &mut *g {
                    Some(Sock::Stream(st)) => st.write(&data[off..]),
                    _ => return fail("closed"),
                }
            };
            match r {
                Ok(0) => return fail("closed"),
                Ok(k) => {
                    off += k;
                    ffi::lua_pushinteger(l, off as ffi::lua_Integer);
                    ffi::lua_replace(l, 3);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return park_io(l, s, Dir::Write, deadline, write_k)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return fail(err_msg(&e)),
            }
        }
        ffi::lua_pushinteger(l, len as ffi::lua_Integer);
        Ret::N(1)
    }
}
continuation!(write_k, write_body);

unsafe extern "C-unwind" fn sock_write(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The borrow of the
    // connection ends with its deadline; argument 2 is checked, then a number
    // is converted in place (that allocates and may raise, while nothing is
    // owned), and the offset pushed: what `write_body` requires.
    unsafe {
        guard(l, || {
            let d = match conn_arg(l, "conn:write") {
                Ok(s) => match s.ctx_err() {
                    Some(err) => return fail(err),
                    None => s.deadline(),
                },
                Err(r) => return r,
            };
            if ffi::lua_type(l, 2) != ffi::LUA_TSTRING && ffi::lua_type(l, 2) != ffi::LUA_TNUMBER {
                let t = type_name(l, 2);
                return raise(format!("conn:write: data must be a string, got {t}"));
            }
            ffi::lua_settop(l, 2);
            // Numbers become strings, as io.write does.
            ffi::lua_tolstring(l, 2, std::ptr::null_mut());
            ffi::lua_pushinteger(l, 0);
            write_body(l, d)
        })
    }
}

// ---------------------------------------------------------------- udp

/// The largest datagram (IPv4's limit, less headers, rounded up): what
/// `recv`/`recvfrom` read when not told.
pub(crate) const DATAGRAM_MAX: usize = 64 << 10;

/// A UDP socket bound to `addr` for actor `a` (plain Rust: no Lua call):
/// the first of its addresses that binds.
fn udp(a: &Arc<Actor>, addr: &str) -> Result<NetSock, String> {
    bind_first(a, addr, |at| UdpSocket::bind(at).map(Sock::Udp))
}

/// `net.udp([addr])`: a UDP socket bound to `addr` (by default
/// `0.0.0.0:0`: any address, a port the system picks).
unsafe extern "C-unwind" fn net_udp(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this `Registry` closure on the running thread `l`;
    // `guard` is its last act. As `net.listen`: the socket's box is
    // allocated (may raise) while nothing is owned, before the address is
    // copied or the socket exists; `udp` makes no Lua call; the box is
    // filled once on top (inert); a failure goes to `guard`.
    unsafe {
        guard(l, || {
            let given = !matches!(ffi::lua_type(l, 1), ffi::LUA_TNIL | ffi::LUA_TNONE);
            if given {
                if let Err(r) = string_check(l, 1, "net.udp", "address") {
                    return r;
                }
            }
            ffi::lua_settop(l, 1);
            let b = new_box_of::<NetSock>(l, Kind::Udp as usize);
            let addr = match given {
                true => string_at(l, 1),
                false => "0.0.0.0:0".to_owned(),
            };
            let made = udp(actor(l), &addr);
            filled(b, made)
        })
    }
}

/// Sends the datagram at 2 to the address at 3 (nil: the connected peer)
/// until sent, failed or blocked.
unsafe fn send_body(l: *mut ffi::lua_State, deadline: u64) -> Ret {
    // SAFETY: `l` runs `udp:send`'s or `udp:sendto`'s closure with the
    // socket at 1, the data string at 2 and the address (a string, or nil)
    // at 3, all on the stack throughout (the callers' contract: the entry
    // functions and `send_k`). The data is borrowed in place; the address
    // is copied (`string_at`, no conversion: inert) and resolved in plain
    // Rust; no Lua call is made after, but the inert push of the count;
    // a failure or a park goes to `guard` once the lock guard, the
    // address and the error are dropped.
    unsafe {
        let fname = match ffi::lua_isnil(l, 3) != 0 {
            true => "udp:send",
            false => "udp:sendto",
        };
        let s = match kind_arg(l, Kind::Udp, fname) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let to = match ffi::lua_isnil(l, 3) != 0 {
            true => None,
            false => match resolve(&s.rt, &string_at(l, 3)) {
                Ok(v) => Some(v[0]),
                Err(msg) => return fail(msg),
            },
        };
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, 2, &mut len);
        let data = std::slice::from_raw_parts(p as *const u8, len);
        let r = match (&*s.lock(), to) {
            (Some(Sock::Udp(u)), Some(at)) => u.send_to(data, at),
            (Some(Sock::Udp(u)), None) => u.send(data),
            _ => return fail("closed"),
        };
        match r {
            Ok(n) => {
                ffi::lua_pushinteger(l, n as ffi::lua_Integer);
                Ret::N(1)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                park_io(l, s, Dir::Write, deadline, send_k)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ret::Retry(deadline as _, send_k),
            Err(e) => fail(udp_err(&e)),
        }
    }
}
continuation!(send_k, send_body);

/// Lua's words for a UDP failure: an unconnected socket is not "closed".
fn udp_err(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotConnected => "not connected".into(),
        _ => err_msg(e),
    }
}

/// The entry of `udp:send(data)` (`to`: false) and `udp:sendto(data,
/// addr)`: checks the arguments, then [`send_body`].
unsafe fn send_entry(l: *mut ffi::lua_State, to: bool) -> c_int {
    let fname = if to { "udp:sendto" } else { "udp:send" };
    // SAFETY: Lua calls the C function this is the last act of (put in
    // place by `Registry`) on `l`, the running thread, with its arguments
    // on the stack; `guard` is its last act. Argument types are read or
    // named (inert); a number given as data is converted in place (that may
    // raise while nothing is owned), and the stack is left as `send_body`
    // requires (nil at 3 for `send`).
    unsafe {
        guard(l, || {
            let d = match kind_arg(l, Kind::Udp, fname) {
                Ok(s) => match s.ctx_err() {
                    Some(err) => return fail(err),
                    None => s.deadline(),
                },
                Err(r) => return r,
            };
            if ffi::lua_type(l, 2) != ffi::LUA_TSTRING && ffi::lua_type(l, 2) != ffi::LUA_TNUMBER {
                let t = type_name(l, 2);
                return raise(format!("{fname}: data must be a string, got {t}"));
            }
            if to {
                if let Err(r) = string_check(l, 3, fname, "address") {
                    return r;
                }
            }
            // `send`'s 3 is nil, whatever else was passed.
            ffi::lua_settop(l, if to { 3 } else { 2 });
            ffi::lua_settop(l, 3);
            ffi::lua_tolstring(l, 2, std::ptr::null_mut());
            send_body(l, d)
        })
    }
}

unsafe extern "C-unwind" fn udp_send(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (made by `Registry`) on `l`, the
    // running thread, with its arguments on the stack, and `send_entry` is
    // its last act: that is `send_entry`'s contract.
    unsafe { send_entry(l, false) }
}

unsafe extern "C-unwind" fn udp_sendto(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `udp_send`.
    unsafe { send_entry(l, true) }
}

/// One datagram of up to argument 2 bytes (the rest of a longer one is
/// dropped, as recv(2) does), and who sent it if `from`.
unsafe fn recv_body(l: *mut ffi::lua_State, deadline: u64, from: bool) -> Ret {
    let fname = if from { "udp:recvfrom" } else { "udp:recv" };
    // SAFETY: `l` runs `udp:recv`'s or `udp:recvfrom`'s closure with the
    // socket at 1 and the count at 2, on the stack throughout (the
    // callers' contract: `sock_method` and the continuations). The lock is
    // a temporary of the `let`, gone before any Lua call; the datagram is
    // handed off (`push_owned`) with nothing else owned: the sender's
    // address is formatted into a plain array (no destructor) and pushed
    // from it after. A failure or park goes to `guard` once `e` is dropped.
    unsafe {
        let s = match kind_arg(l, Kind::Udp, fname) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let n = match count_arg(l, fname, "count", DATAGRAM_MAX) {
            Ok(n) => n.min(DATAGRAM_MAX),
            Err(r) => return r,
        };
        // Into the scratch buffer (no 64 KiB zeroed per datagram); the
        // bytes are copied out before any Lua call.
        let r = SCRATCH.with_borrow_mut(|buf| {
            let buf = &mut buf[..n];
            let got = match &*s.lock() {
                Some(Sock::Udp(u)) if from => u.recv_from(buf),
                Some(Sock::Udp(u)) => u.recv(buf).map(|k| (k, SocketAddr::from(([0; 4], 0)))),
                _ => return None,
            };
            Some(got.map(|(k, at)| (buf[..k].to_vec(), at)))
        });
        let Some(r) = r else {
            return fail("closed");
        };
        match r {
            Ok((data, at)) => {
                push_owned(l, data);
                if !from {
                    return Ret::N(1);
                }
                let mut shown = [0u8; 64];
                let mut w = &mut shown[..];
                let _ = write!(w, "{at}");
                let len = 64 - w.len();
                ffi::lua_pushlstring(l, shown.as_ptr() as *const _, len);
                Ret::N(2)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let k = if from { recvfrom_k } else { recv_k };
                park_io(l, s, Dir::Read, deadline, k)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                Ret::Retry(deadline as _, if from { recvfrom_k } else { recv_k })
            }
            Err(e) => fail(udp_err(&e)),
        }
    }
}

unsafe fn recv_only(l: *mut ffi::lua_State, deadline: u64) -> Ret {
    // SAFETY: `recv_body`'s contract (the caller's).
    unsafe { recv_body(l, deadline, false) }
}

unsafe fn recv_from(l: *mut ffi::lua_State, deadline: u64) -> Ret {
    // SAFETY: `recv_body`'s contract (the caller's).
    unsafe { recv_body(l, deadline, true) }
}
continuation!(recv_k, recv_only);
continuation!(recvfrom_k, recv_from);

unsafe extern "C-unwind" fn udp_recv(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C closure (made by `Registry`) on `l`, the
    // running thread, with its arguments on the stack, and `sock_method` is
    // its last act: that is `sock_method`'s contract.
    unsafe { sock_method(l, "udp:recv", 2, recv_only) }
}

unsafe extern "C-unwind" fn udp_recvfrom(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `udp_recv`.
    unsafe { sock_method(l, "udp:recvfrom", 2, recv_from) }
}

/// `udp:connect(addr)`: sends go to `addr` and only its datagrams are
/// received; `true`, or `nil, message`.
unsafe extern "C-unwind" fn udp_connect(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (made by `Registry`) on `l`, the
    // running thread, with its arguments on the stack; `guard` is its last
    // act. The socket is borrowed from argument 1, on the stack throughout;
    // the address is copied (inert) and resolved in plain Rust; the lock is
    // a temporary of the `let`, gone before the push of `true` (inert).
    unsafe {
        guard(l, || {
            let s = match kind_arg(l, Kind::Udp, "udp:connect") {
                Ok(s) => s,
                Err(r) => return r,
            };
            if let Err(r) = string_check(l, 2, "udp:connect", "address") {
                return r;
            }
            let at = match resolve(&s.rt, &string_at(l, 2)) {
                Ok(v) => v[0],
                Err(msg) => return fail(msg),
            };
            let r = match &*s.lock() {
                Some(Sock::Udp(u)) => u.connect(at),
                _ => return fail("closed"),
            };
            match r {
                Ok(()) => {
                    ffi::lua_pushboolean(l, 1);
                    Ret::N(1)
                }
                Err(e) => fail(err_msg(&e)),
            }
        })
    }
}

// ---------------------------------------------------------------- the rest

unsafe extern "C-unwind" fn sock_settimeout(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The socket is borrowed
    // from argument 1, on the stack throughout; argument 2 is read, or its
    // type named (inert).
    unsafe {
        guard(l, || {
            let s = match sock_arg(l, "conn:settimeout") {
                Ok(s) => s,
                Err(r) => return r,
            };
            let t = match ffi::lua_type(l, 2) {
                ffi::LUA_TNIL | ffi::LUA_TNONE => 0,
                ffi::LUA_TNUMBER => {
                    let d = ffi::lua_tonumber(l, 2);
                    if d > 0.0 {
                        secs_to_ns(d).max(1)
                    } else {
                        0
                    }
                }
                _ => {
                    let t = type_name(l, 2);
                    return raise(format!(
                        "conn:settimeout: duration must be a number, got {t}"
                    ));
                }
            };
            s.timeout.store(t, Ordering::Relaxed);
            Ret::N(0)
        })
    }
}

/// `sock:setcontext(ctx)`: each following operation fails with
/// `nil, ctx:err()` once `ctx` has ended, and one parked then wakes with
/// it at once (nil: none).
unsafe extern "C-unwind" fn sock_setcontext(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (made by `Registry`) on `l`, the
    // running thread, with its arguments on the stack; `guard` is its last
    // act. The socket is borrowed from argument 1, on the stack throughout;
    // the context is read from argument 2 (a new reference, stored; no Lua
    // call follows but naming a wrong type, inert).
    unsafe {
        guard(l, || {
            let s = match sock_arg(l, "conn:setcontext") {
                Ok(s) => s,
                Err(r) => return r,
            };
            let ctx = match ffi::lua_type(l, 2) {
                ffi::LUA_TNIL | ffi::LUA_TNONE => None,
                _ => match crate::cfn::Closure::of(l).arc::<Ctx>(l, 2) {
                    Some(c) => {
                        // Kept by the socket: a hand-out (`lugo_vm::leak`).
                        let actor = crate::cfn::Closure::of(l).actor();
                        lugo_vm::leak::note_handout(actor, Arc::as_ptr(&c) as usize);
                        Some(c)
                    }
                    None => {
                        let t = type_name(l, 2);
                        return raise(format!("conn:setcontext: context expected, got {t}"));
                    }
                },
            };
            s.set_ctx(ctx);
            Ret::N(0)
        })
    }
}

unsafe extern "C-unwind" fn sock_close(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The socket is borrowed
    // from argument 1, on the stack throughout; closing it makes no Lua call.
    unsafe {
        guard(l, || match sock_arg(l, "conn:close") {
            Ok(s) => {
                s.close();
                Ret::N(0)
            }
            Err(r) => r,
        })
    }
}

/// Applies `op` to the connection at argument 1, a socket option or a
/// shutdown that never blocks: `true`, or `nil, message`.
unsafe fn stream_op(
    l: *mut ffi::lua_State,
    fname: &str,
    op: impl FnOnce(&TcpStream) -> io::Result<()>,
) -> Ret {
    // SAFETY: `l` is the running thread of a socket method's closure (made
    // by `Registry`), with the socket at 1 (the callers' contract). The
    // socket is borrowed from argument 1, on the stack throughout; its lock
    // is released before the one Lua call (a temporary of the `match`), a
    // push of a boolean (inert); a failure goes to `guard`, pushed once the
    // `io::Error` is dropped.
    unsafe {
        let s = match conn_arg(l, fname) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let r = match &*s.lock() {
            Some(Sock::Stream(st)) => op(st),
            _ => return fail("closed"),
        };
        match r {
            Ok(()) => {
                ffi::lua_pushboolean(l, 1);
                Ret::N(1)
            }
            Err(e) => fail(err_msg(&e)),
        }
    }
}

unsafe extern "C-unwind" fn sock_setnodelay(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`) on `l`,
    // the running thread, with its arguments on the stack; `guard` is its
    // last act. Argument 2's type is read or named (inert); then
    // `stream_op`'s contract holds.
    unsafe {
        guard(l, || {
            if ffi::lua_type(l, 2) != ffi::LUA_TBOOLEAN {
                let t = type_name(l, 2);
                return raise(format!("conn:setnodelay: on must be a boolean, got {t}"));
            }
            let on = ffi::lua_toboolean(l, 2) != 0;
            stream_op(l, "conn:setnodelay", |st| st.set_nodelay(on))
        })
    }
}

/// What `conn:setkeepalive` asks for: off, on with the system's timing,
/// or on with probes after (and every) this long.
fn keepalive(st: &TcpStream, every: Option<Option<std::time::Duration>>) -> io::Result<()> {
    let sock = socket2::SockRef::from(st);
    match every {
        None => sock.set_keepalive(false),
        Some(None) => sock.set_keepalive(true),
        Some(Some(d)) => {
            let ka = socket2::TcpKeepalive::new().with_time(d).with_interval(d);
            sock.set_tcp_keepalive(&ka)
        }
    }
}

unsafe extern "C-unwind" fn sock_setkeepalive(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`) on `l`,
    // the running thread, with its arguments on the stack; `guard` is its
    // last act. Argument 2 is read, or its type named (inert); then
    // `stream_op`'s contract holds.
    unsafe {
        guard(l, || {
            let every = match ffi::lua_type(l, 2) {
                ffi::LUA_TBOOLEAN => (ffi::lua_toboolean(l, 2) != 0).then_some(None),
                ffi::LUA_TNUMBER => {
                    let secs = ffi::lua_tonumber(l, 2);
                    // Whole seconds, as TCP_KEEPIDLE takes them.
                    if !(1.0..=86400.0 * 365.0).contains(&secs) {
                        return raise(
                            "conn:setkeepalive: period must be at least 1 second and at most a year",
                        );
                    }
                    Some(Some(std::time::Duration::from_secs(secs as u64)))
                }
                _ => {
                    let t = type_name(l, 2);
                    return raise(format!(
                        "conn:setkeepalive: on must be a boolean or a period in seconds, got {t}"
                    ));
                }
            };
            stream_op(l, "conn:setkeepalive", |st| keepalive(st, every))
        })
    }
}

unsafe extern "C-unwind" fn sock_shutdown(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`) on `l`,
    // the running thread, with its arguments on the stack; `guard` is its
    // last act. Argument 2 is compared as a string or its type named
    // (inert); then `stream_op`'s contract holds.
    unsafe {
        guard(l, || {
            let how = match ffi::lua_type(l, 2) {
                ffi::LUA_TNIL | ffi::LUA_TNONE => std::net::Shutdown::Both,
                ffi::LUA_TSTRING => match string_at(l, 2).as_str() {
                    "r" => std::net::Shutdown::Read,
                    "w" => std::net::Shutdown::Write,
                    "rw" => std::net::Shutdown::Both,
                    other => {
                        return raise(format!(
                            "conn:shutdown: how must be \"r\", \"w\" or \"rw\", got \"{other}\""
                        ))
                    }
                },
                _ => {
                    let t = type_name(l, 2);
                    return raise(format!("conn:shutdown: how must be a string, got {t}"));
                }
            };
            stream_op(l, "conn:shutdown", |st| st.shutdown(how))
        })
    }
}

unsafe fn addr_of(l: *mut ffi::lua_State, fname: &str, peer: bool) -> Ret {
    // SAFETY: `l` is the running thread of a socket method's closure (made by
    // `Registry`), with the socket at 1 (the callers' contract: `sock_addr`
    // and `sock_peer`). The socket is borrowed from argument 1, on the stack
    // throughout; its lock is released before any Lua call (a temporary of
    // the `let`). The address, as a string, is handed off (`push_owned`, the
    // one raising call, with nothing else owned); a failure is returned, for
    // `guard` to push once `e`, an `io::Error`, is dropped.
    unsafe {
        let s = match sock_arg(l, fname) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let a = match &*s.lock() {
            Some(Sock::Stream(st)) if peer => st.peer_addr(),
            Some(Sock::Stream(st)) => st.local_addr(),
            Some(Sock::Listener(_)) if peer => {
                return raise(format!("{fname}: a listener has no peer"))
            }
            Some(Sock::Listener(ls)) => ls.local_addr(),
            Some(Sock::Udp(u)) if peer => u.peer_addr(),
            Some(Sock::Udp(u)) => u.local_addr(),
            None => return fail("closed"),
        };
        let a = match a {
            Ok(a) => a,
            Err(e) if s.kind == Kind::Udp => return fail(udp_err(&e)),
            Err(e) => return fail(err_msg(&e)),
        };
        push_owned(l, a.to_string());
        Ret::N(1)
    }
}

unsafe extern "C-unwind" fn sock_addr(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. That is `addr_of`'s
    // contract.
    unsafe { guard(l, || addr_of(l, "conn:addr", false)) }
}

unsafe extern "C-unwind" fn sock_peer(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. That is `addr_of`'s
    // contract.
    unsafe { guard(l, || addr_of(l, "conn:peer", true)) }
}

/// The addresses of `host`, space-separated, IPv4 first, each once; the
/// resolution is a blocking call (its P may be handed off).
fn lookup(rt: &Runtime, host: &str) -> Result<String, String> {
    let addrs = resolve_blocking(rt, (host, 0u16)).map_err(|_| "no such host")?;
    let mut ips: Vec<String> = Vec::with_capacity(addrs.len());
    for ip in addrs.iter().map(|a| a.ip().to_string()) {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    if ips.is_empty() {
        return Err("no such host".into());
    }
    Ok(ips.join(" "))
}

/// `net.lookup(host)`: a table of its addresses (strings, IPv4 first), or
/// `nil, "no such host"`.
unsafe extern "C-unwind" fn net_lookup(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this `Registry` closure on the running thread `l`;
    // `guard` is its last act. The host (argument 1, a string) is copied,
    // and resolved in plain Rust; the addresses are handed off as one
    // string (`push_owned`, nothing else owned), then split into a new
    // table with pushes that may raise while nothing is owned: the pieces
    // are read in place from that string, which stays on the stack.
    unsafe {
        guard(l, || {
            if let Err(r) = string_check(l, 1, "net.lookup", "host") {
                return r;
            }
            let found = lookup(actor(l).runtime(), &string_at(l, 1));
            let joined = match found {
                Ok(j) => j,
                Err(msg) => return fail(msg),
            };
            ffi::lua_settop(l, 1);
            push_owned(l, joined);
            ffi::lua_createtable(l, 4, 0);
            let mut len = 0usize;
            let p = ffi::lua_tolstring(l, 2, &mut len) as *const u8;
            let mut n = 0;
            let mut start = 0usize;
            for i in 0..=len {
                if i == len || *p.add(i) == b' ' {
                    ffi::lua_pushlstring(l, p.add(start) as *const _, i - start);
                    n += 1;
                    ffi::lua_rawseti(l, 3, n);
                    start = i + 1;
                }
            }
            Ret::N(1)
        })
    }
}

/// A connection's methods.
pub(crate) const CONN_METHODS: [(&CStr, CFn); 12] = [
    (c"setcontext", sock_setcontext),
    (c"read", sock_read),
    (c"readall", sock_readall),
    (c"readline", sock_readline),
    (c"write", sock_write),
    (c"settimeout", sock_settimeout),
    (c"close", sock_close),
    (c"addr", sock_addr),
    (c"peer", sock_peer),
    (c"setnodelay", sock_setnodelay),
    (c"setkeepalive", sock_setkeepalive),
    (c"shutdown", sock_shutdown),
];

/// A listener's methods.
pub(crate) const LISTENER_METHODS: [(&CStr, CFn); 5] = [
    (c"setcontext", sock_setcontext),
    (c"accept", sock_accept),
    (c"settimeout", sock_settimeout),
    (c"close", sock_close),
    (c"addr", sock_addr),
];

/// A UDP socket's methods.
pub(crate) const UDP_METHODS: [(&CStr, CFn); 10] = [
    (c"setcontext", sock_setcontext),
    (c"send", udp_send),
    (c"sendto", udp_sendto),
    (c"recv", udp_recv),
    (c"recvfrom", udp_recvfrom),
    (c"connect", udp_connect),
    (c"settimeout", sock_settimeout),
    (c"close", sock_close),
    (c"addr", sock_addr),
    (c"peer", sock_peer),
];

/// The kind whose method `name` is, if another than `kind`'s.
fn owner_of(kind: Kind, name: &[u8]) -> Option<Kind> {
    let has = |k: Kind| {
        KINDS[k as usize]
            .0
            .iter()
            .any(|(m, _)| m.to_bytes() == name)
    };
    match has(kind) {
        true => None,
        false => [Kind::Conn, Kind::Listener, Kind::Udp]
            .into_iter()
            .find(|&k| has(k)),
    }
}

/// `__index` of a kind's methods table, reached when a method is missing:
/// another kind's method raises (`l:read()`: `conn:read: read on a
/// listener`, as calling `conn.read` on it does); any other name is nil.
unsafe fn lacks(l: *mut ffi::lua_State, kind: Kind) -> c_int {
    // SAFETY: Lua calls the `__index` this is the last act of (made by
    // `Registry`) on `l`, the running thread, with the table at 1 and the
    // key at 2; `guard` is its last act. A string key is read in place (no
    // conversion), the message made before `guard` raises it.
    unsafe {
        guard(l, || {
            if ffi::lua_type(l, 2) == ffi::LUA_TSTRING {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(l, 2, &mut len);
                let name = std::slice::from_raw_parts(p as *const u8, len);
                if let Some(owner) = owner_of(kind, name) {
                    let name = String::from_utf8_lossy(name);
                    let msg = format!("{}:{name}: {name} on {}", owner.name(), kind.called());
                    return raise(msg);
                }
            }
            ffi::lua_pushnil(l);
            Ret::N(1)
        })
    }
}

unsafe extern "C-unwind" fn conn_lacks(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this `__index` on the running thread `l`: `lacks`'
    // contract.
    unsafe { lacks(l, Kind::Conn) }
}

unsafe extern "C-unwind" fn listener_lacks(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `conn_lacks`.
    unsafe { lacks(l, Kind::Listener) }
}

unsafe extern "C-unwind" fn udp_lacks(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `conn_lacks`.
    unsafe { lacks(l, Kind::Udp) }
}

/// Each kind's methods, in `Kind`'s order, with the `__index` of its
/// methods table's metatable (see [`lacks`]).
pub(crate) const KINDS: [(&[(&CStr, CFn)], CFn); 3] = [
    (&CONN_METHODS, conn_lacks),
    (&LISTENER_METHODS, listener_lacks),
    (&UDP_METHODS, udp_lacks),
];

/// The functions the Lua half gets in `P`.
pub(crate) const FUNCTIONS: [(&CStr, CFn); 4] = [
    (c"net_listen", net_listen),
    (c"net_dial", net_dial),
    (c"net_lookup", net_lookup),
    (c"net_udp", net_udp),
];
