//! The error of every fallible call of the embedding API.

use crate::Outcome;

/// What went wrong in a call of the embedding API.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Lua could not load a chunk, or a value did not convert (from mlua).
    Lua(mlua::Error),
    /// The goroutine the host waited for raised an error it did not catch.
    Raised {
        /// The error message (`script.lua:3: boom`).
        message: String,
        /// Lua's `stack traceback:` text where it was raised (may be empty).
        traceback: String,
    },
    /// Every goroutine was blocked while the host waited: Go's report with
    /// every goroutine's stack. The runtime goes on.
    Deadlock(String),
    /// The runtime has ended: `os.exit(n)` (`Outcome::Exit(n)`), an
    /// uncaught error in a goroutine nobody waited for, a CPU budget used
    /// up by the main actor, or [`crate::Runtime::shutdown`].
    Stopped(Outcome),
    /// The channel is closed.
    Closed,
    /// The deadline passed first.
    Timeout,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Lua(e) => write!(f, "{e}"),
            Error::Raised { message, traceback } if traceback.is_empty() => f.write_str(message),
            Error::Raised { message, traceback } => write!(f, "{message}\n{traceback}"),
            Error::Deadlock(report) => f.write_str(report.trim_end()),
            Error::Stopped(Outcome::Exit(code)) => write!(f, "the runtime has exited ({code})"),
            Error::Stopped(o) => write!(
                f,
                "the runtime has stopped: {}",
                o.report().unwrap_or("").trim_end()
            ),
            Error::Closed => f.write_str("channel closed"),
            Error::Timeout => f.write_str("timed out"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Lua(e) => Some(e),
            _ => None,
        }
    }
}

impl From<mlua::Error> for Error {
    fn from(e: mlua::Error) -> Error {
        Error::Lua(e)
    }
}

/// The result of a call of the embedding API.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_happened() {
        let raised = Error::Raised {
            message: "x.lua:1: boom".into(),
            traceback: "stack traceback:\n\tx.lua:1: in main chunk".into(),
        };
        assert_eq!(
            raised.to_string(),
            "x.lua:1: boom\nstack traceback:\n\tx.lua:1: in main chunk"
        );
        assert_eq!(
            Error::Stopped(Outcome::Exit(3)).to_string(),
            "the runtime has exited (3)"
        );
        let panic = Error::Stopped(Outcome::Panic("panic: boom\n".into()));
        assert_eq!(panic.to_string(), "the runtime has stopped: panic: boom");
    }
}
