//! `print` that writes each line in one call: lines printed by actors on
//! different threads never interleave inside a line (Lua's own `print`
//! writes each argument, then the newline, as separate writes).
//!
//! The line is built in a Lua buffer (Lua owns its memory: a raise in a
//! `__tostring` skips nothing of ours), then written to C's `stdout`, the
//! stream `io.write` uses too, with one `fwrite` (which holds the
//! stream's lock for the whole line) and flushed, as `lua.c` flushes.

use std::ffi::c_int;

use mlua::ffi;

extern "C" {
    /// C's standard output stream (glibc exports it).
    static mut stdout: *mut libc::FILE;
}

/// `print(...)`.
pub(crate) unsafe extern "C-unwind" fn print(l: *mut ffi::lua_State) -> c_int {
    let mut len = 0usize;
    // SAFETY: Lua calls this C function on `l`, the running thread, with
    // its arguments on the stack. `b` (zeroed: a valid `luaL_Buffer`) stays
    // in place while it is in use, and the stack is used as a buffer
    // requires: `luaL_tolstring` pushes the one value `luaL_addvalue`
    // takes. A `__tostring` may raise: Lua owns the buffer's memory (a box
    // on the stack), and nothing of ours has a destructor.
    let p = unsafe {
        let n = ffi::lua_gettop(l);
        let mut b: ffi::luaL_Buffer = std::mem::zeroed();
        ffi::luaL_buffinit(l, &mut b);
        for i in 1..=n {
            if i > 1 {
                ffi::luaL_addlstring(&mut b, c"\t".as_ptr(), 1);
            }
            ffi::luaL_tolstring(l, i, std::ptr::null_mut());
            ffi::luaL_addvalue(&mut b);
        }
        ffi::luaL_addlstring(&mut b, c"\n".as_ptr(), 1);
        ffi::luaL_pushresult(&mut b);
        ffi::lua_tolstring(l, -1, &mut len)
    };
    // SAFETY: `stdout` is C's stream, set up before main; `p` points at
    // `len` bytes of the string on the stack.
    unsafe {
        let out = std::ptr::addr_of!(stdout).read();
        libc::fwrite(p as *const libc::c_void, 1, len, out);
        libc::fflush(out);
    }
    0
}
