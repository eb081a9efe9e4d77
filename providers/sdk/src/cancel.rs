//! The signal that tells a provider to stop waiting: the engine raises it when the user presses
//! Ctrl-C or CI sends SIGTERM. A provider waiting on a long operation (polling a cloud
//! operation, sleeping before a retry) returns as soon as it is raised, with
//! [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled) and, when the object exists,
//! what it knows of it ([`ProviderError::with_existing`](crate::ProviderError::with_existing)),
//! so the engine records it.

use std::sync::Arc;
use tokio::sync::watch;

/// A cancellation signal shared by the engine and every operation it started. Cloning it
/// gives another handle on the same signal; once raised it stays raised.
#[derive(Clone, Debug)]
pub struct Cancel {
    raised: Arc<watch::Sender<bool>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel::new()
    }
}

impl Cancel {
    /// A signal not raised yet.
    pub fn new() -> Cancel {
        Cancel {
            raised: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Raises the signal: every [`Cancel::cancelled`] resolves, now and later.
    pub fn cancel(&self) {
        self.raised.send_replace(true);
    }

    pub fn is_cancelled(&self) -> bool {
        *self.raised.borrow()
    }

    /// Resolves once the signal is raised (at once if it already is).
    pub async fn cancelled(&self) {
        let mut seen = self.raised.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = seen.wait_for(|raised| *raised).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_raised_signal_wakes_every_waiter_and_stays_raised() {
        let cancel = Cancel::new();
        assert!(!cancel.is_cancelled());
        let waiter = tokio::spawn({
            let cancel = cancel.clone();
            async move { cancel.cancelled().await }
        });
        tokio::task::yield_now().await;
        cancel.cancel();
        waiter.await.unwrap();
        assert!(cancel.is_cancelled());
        // A late waiter does not wait.
        cancel.clone().cancelled().await;
    }
}
