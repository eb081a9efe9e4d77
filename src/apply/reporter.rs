//! Progress of an apply, apart from the work itself: the engine emits [`Event`]s, a reporter
//! shows them — a progress bar on a terminal, plain lines in CI and logs.

use crate::plan::Action;
use std::sync::Mutex;
use std::time::Duration;

pub enum Event<'a> {
    Begin {
        total: usize,
    },
    Started {
        address: &'a str,
        action: Action,
    },
    Finished {
        address: &'a str,
        action: Action,
        elapsed: Duration,
    },
    Failed {
        address: &'a str,
        action: Action,
        error: &'a str,
    },
    Skipped {
        address: &'a str,
        because: &'a str,
    },
    Interrupted {
        in_flight: usize,
    },
    End,
}

pub trait Reporter: Send + Sync {
    fn event(&self, event: Event<'_>);
}

fn verb(action: Action, done: bool) -> &'static str {
    match (action, done) {
        (Action::Create, false) => "creating",
        (Action::Create, true) => "created",
        (Action::Update, false) => "updating",
        (Action::Update, true) => "updated",
        (Action::Replace, false) => "replacing",
        (Action::Replace, true) => "replaced",
        (Action::Delete, false) => "destroying",
        (Action::Delete, true) => "destroyed",
        (Action::NoOp, _) => "unchanged",
    }
}

/// One line per event on stderr: for CI logs and pipes.
pub struct PlainReporter {
    pub redactor: crate::redact::Redactor,
}

impl Reporter for PlainReporter {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Begin { .. } | Event::End => {}
            Event::Started { address, action } => {
                eprintln!("{address}: {}...", verb(action, false))
            }
            Event::Finished {
                address,
                action,
                elapsed,
            } => {
                eprintln!(
                    "{address}: {} ({:.2}s)",
                    verb(action, true),
                    elapsed.as_secs_f64()
                )
            }
            Event::Failed {
                address,
                action,
                error,
            } => {
                eprintln!(
                    "{address}: {} failed: {}",
                    verb(action, false),
                    self.redactor.redact(error)
                )
            }
            Event::Skipped { address, because } => {
                eprintln!("{address}: skipped ({because} did not complete)")
            }
            Event::Interrupted { in_flight } => eprintln!(
                "Interrupted: finishing {in_flight} operation(s) in flight, then saving state. Press Ctrl-C again to wait anyway."
            ),
        }
    }
}

/// A progress bar on a terminal, with failures printed above it.
pub struct TerminalReporter {
    bar: Mutex<Option<indicatif::ProgressBar>>,
    redactor: crate::redact::Redactor,
}

impl TerminalReporter {
    pub fn new(redactor: crate::redact::Redactor) -> Self {
        TerminalReporter {
            bar: Mutex::new(None),
            redactor,
        }
    }
}

impl Reporter for TerminalReporter {
    fn event(&self, event: Event<'_>) {
        let Ok(mut guard) = self.bar.lock() else {
            return;
        };
        match event {
            Event::Begin { total } => {
                let bar = indicatif::ProgressBar::new(total as u64);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{spinner} [{bar:30}] {pos}/{len} {wide_msg}",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.enable_steady_tick(Duration::from_millis(120));
                *guard = Some(bar);
            }
            Event::Started { address, action } => {
                if let Some(bar) = guard.as_ref() {
                    bar.set_message(format!("{} {address}", verb(action, false)));
                }
            }
            Event::Finished {
                address, action, ..
            } => {
                if let Some(bar) = guard.as_ref() {
                    bar.inc(1);
                    bar.set_message(format!("{} {address}", verb(action, true)));
                }
            }
            Event::Failed {
                address,
                action,
                error,
            } => {
                let line = format!(
                    "{address}: {} failed: {}",
                    verb(action, false),
                    self.redactor.redact(error)
                );
                match guard.as_ref() {
                    Some(bar) => bar.println(line),
                    None => eprintln!("{line}"),
                }
            }
            Event::Skipped { address, because } => {
                let line = format!("{address}: skipped ({because} did not complete)");
                match guard.as_ref() {
                    Some(bar) => bar.println(line),
                    None => eprintln!("{line}"),
                }
            }
            Event::Interrupted { in_flight } => {
                let line = format!(
                    "Interrupted: finishing {in_flight} operation(s) in flight, then saving state."
                );
                match guard.as_ref() {
                    Some(bar) => bar.println(line),
                    None => eprintln!("{line}"),
                }
            }
            Event::End => {
                if let Some(bar) = guard.take() {
                    bar.finish_and_clear();
                }
            }
        }
    }
}
