//! Terminal output shared by the commands: colour detection, diagnostics, errors.
//!
//! Commands write to stdout through [`print_stdout`], never `println!`, which panics when the
//! reader has gone away (`weir validate --json | head -c1`); the crate's own `eprintln!` does
//! not panic either (see `lib.rs`). A closed pipe stops the output quietly and the command
//! still ends with its own exit code, so `weir plan --detailed-exitcode | head` reports
//! "changes" even when `head` stopped reading.

use crate::diagnostics::Diagnostics;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set when standard output could not be written for another reason than a closed pipe (a
/// full disk, say): the output is incomplete, so the command must not report success.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);
/// Set once standard output is gone: nothing more is written to it.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Colour on stderr unless `--no-color`, `NO_COLOR`, or stderr is not a terminal.
pub fn use_color(no_color: bool) -> bool {
    !no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stderr().is_terminal()
}

/// Prints diagnostics to stderr with a closing count.
pub fn print_diagnostics(diags: &Diagnostics, color: bool) {
    for d in diags.iter() {
        eprintln!("{}", d.render(color));
    }
    let (e, w) = (diags.error_count(), diags.warning_count());
    if e + w > 0 {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        eprintln!("{}, {}", plural(e, "error"), plural(w, "warning"));
    }
}

/// Prints a fatal error.
pub fn error(message: &str, color: bool) {
    if color {
        let style = anstyle::AnsiColor::Red.on_default().bold();
        eprintln!("{style}error{style:#}: {message}");
    } else {
        eprintln!("error: {message}");
    }
}

/// Colour on stdout (plans) when allowed on stderr and stdout is a terminal too.
pub fn stdout_color(allowed: bool) -> bool {
    allowed && std::io::stdout().is_terminal()
}

/// Writes to stdout. A closed pipe (`weir plan | head`) ends the output quietly; any other
/// failure is reported once on stderr and makes the command exit 1 (see [`stdout_failed`]).
pub fn print_stdout(text: &str) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if err.kind() != std::io::ErrorKind::BrokenPipe {
            STDOUT_FAILED.store(true, Ordering::Relaxed);
            eprintln!("error: cannot write to standard output: {err}");
        }
    }
}

/// Whether some output was lost for another reason than a closed pipe.
pub fn stdout_failed() -> bool {
    STDOUT_FAILED.load(Ordering::Relaxed)
}
