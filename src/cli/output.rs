//! Terminal output shared by the commands: colour detection, diagnostics, errors.

use crate::diagnostics::Diagnostics;
use std::io::IsTerminal;

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

/// Writes to stdout; a closed pipe (`weir plan | head`) ends quietly instead of panicking.
pub fn print_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}
