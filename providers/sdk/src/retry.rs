//! Retrying a provider's calls to its API. Retries belong to the provider, which knows whether
//! a call may be repeated; the engine never repeats an operation.
//!
//! [`retry`] repeats a call while it fails with a [`Retryable`](crate::ErrorKind::Retryable)
//! error and the policy allows: at most [`RetryPolicy::max_attempts`] attempts, never past
//! [`RetryPolicy::deadline`], waiting between attempts with exponential backoff and full
//! jitter (a random wait between zero and the backoff, so that many clients throttled at once
//! do not come back at once), or exactly what the server asked for in `Retry-After`
//! ([`ProviderError::with_retry_after`](crate::ProviderError::with_retry_after)). A call
//! that is not idempotent is never repeated. Every attempt of one [`retry`] carries the same
//! request id, for APIs that deduplicate a repeated request by it (Compute Engine's
//! `requestId`), which makes a create safe to repeat. A raised [`Cancel`] ends the wait at once.

use crate::{Cancel, ProviderError};
use async_trait::async_trait;
use std::future::Future;
use std::time::{Duration, Instant};

/// How often and how long to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (1: never retry).
    pub max_attempts: u32,
    /// The backoff before the second attempt; it doubles for each attempt after.
    pub initial_backoff: Duration,
    /// The backoff never grows past this.
    pub max_backoff: Duration,
    /// No attempt starts later than this after the first one: a wait that would end past it
    /// gives up instead.
    pub deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            deadline: Some(Duration::from_secs(300)),
        }
    }
}

/// Whether a call may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Repeating it changes nothing more than doing it once: a read, a PUT or PATCH of whole
    /// values, a delete, or a POST that carries [`Attempt::request_id`] to an API that
    /// deduplicates by it.
    Idempotent,
    /// Repeating it could do it twice (a create the API does not deduplicate): retried only
    /// when the target says it did not act on it ([`ProviderError::unprocessed`]). On another
    /// retryable error the provider reads the target to learn whether it happened.
    NotIdempotent,
}

/// One attempt of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// The same for every attempt of one [`retry`] (a random UUID).
    pub request_id: String,
}

/// Time as [`retry`] sees it: real time with [`TokioClock`], a fake one in tests.
#[async_trait]
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
    async fn sleep(&self, duration: Duration);
}

/// Real time, sleeping on tokio's timer.
pub struct TokioClock;

#[async_trait]
impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Runs `call` until it succeeds, fails for good, or the policy gives up (see the module's
/// documentation). Returns the last error when it gives up.
pub async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    idempotency: Idempotency,
    cancel: &Cancel,
    call: F,
) -> Result<T, ProviderError>
where
    F: FnMut(Attempt) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    retry_with_clock(policy, idempotency, cancel, &TokioClock, call).await
}

/// [`retry`] with the given clock.
pub async fn retry_with_clock<T, F, Fut>(
    policy: &RetryPolicy,
    idempotency: Idempotency,
    cancel: &Cancel,
    clock: &dyn Clock,
    mut call: F,
) -> Result<T, ProviderError>
where
    F: FnMut(Attempt) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let started = clock.now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut number = 1;
    loop {
        let error = match call(Attempt {
            number,
            request_id: request_id.clone(),
        })
        .await
        {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        // A call that is not idempotent is sent again only when the target says it did not
        // act on it: otherwise the first attempt may have done it.
        if !error.is_retryable()
            || (idempotency == Idempotency::NotIdempotent && !error.unprocessed)
        {
            return Err(error);
        }
        if number >= policy.max_attempts {
            return Err(error.gave_up(number));
        }
        let wait = error
            .retry_after
            .unwrap_or_else(|| full_jitter(backoff(policy, number)));
        if let Some(deadline) = policy.deadline
            && clock.now().duration_since(started) + wait > deadline
        {
            return Err(error.gave_up(number));
        }
        tokio::select! {
            _ = clock.sleep(wait) => {}
            _ = cancel.cancelled() => {
                let stopped = ProviderError::cancelled(format!(
                    "stopped while waiting to retry: {}",
                    error.message
                ));
                return Err(ProviderError {
                    existing: error.existing,
                    ..stopped
                });
            }
        }
        number += 1;
    }
}

/// The longest wait after attempt `number` failed: `initial_backoff · 2^(number-1)`, at most
/// `max_backoff`.
fn backoff(policy: &RetryPolicy, number: u32) -> Duration {
    let factor = 2u32.saturating_pow(number.saturating_sub(1));
    policy
        .initial_backoff
        .saturating_mul(factor)
        .min(policy.max_backoff)
}

/// A random wait between zero and `cap`.
fn full_jitter(cap: Duration) -> Duration {
    let cap_nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=cap_nanos))
}

/// The wait a `Retry-After` header asks for, when it gives seconds (`Retry-After: 30`). Its
/// other form, an HTTP date, gives `None`: the caller then backs off as usual.
pub fn parse_retry_after(header: &str) -> Option<Duration> {
    header.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::sync::Mutex;

    /// Time that passes only when `retry` sleeps; every sleep is recorded.
    struct FakeClock {
        start: Instant,
        elapsed: Mutex<Duration>,
        sleeps: Mutex<Vec<Duration>>,
    }

    impl FakeClock {
        fn new() -> FakeClock {
            FakeClock {
                start: Instant::now(),
                elapsed: Mutex::new(Duration::ZERO),
                sleeps: Mutex::new(Vec::new()),
            }
        }

        fn sleeps(&self) -> Vec<Duration> {
            self.sleeps.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            self.start + *self.elapsed.lock().unwrap()
        }

        async fn sleep(&self, duration: Duration) {
            *self.elapsed.lock().unwrap() += duration;
            self.sleeps.lock().unwrap().push(duration);
        }
    }

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(4),
            deadline: None,
        }
    }

    /// Runs `retry` on calls that answer from `answers` in turn; returns the result and the
    /// attempts made.
    async fn run(
        policy: &RetryPolicy,
        idempotency: Idempotency,
        clock: &FakeClock,
        answers: Vec<Result<u32, ProviderError>>,
    ) -> (Result<u32, ProviderError>, Vec<Attempt>) {
        let answers = Mutex::new(answers.into_iter());
        let attempts = Mutex::new(Vec::new());
        let result = retry_with_clock(policy, idempotency, &Cancel::new(), clock, |attempt| {
            attempts.lock().unwrap().push(attempt);
            let answer = answers.lock().unwrap().next().expect("an answer left");
            async move { answer }
        })
        .await;
        (result, attempts.into_inner().unwrap())
    }

    #[tokio::test]
    async fn retryable_errors_are_retried_with_jittered_backoff_and_one_request_id() {
        let clock = FakeClock::new();
        let (result, attempts) = run(
            &policy(10),
            Idempotency::Idempotent,
            &clock,
            vec![
                Err(ProviderError::retryable("503")),
                Err(ProviderError::retryable("503")),
                Err(ProviderError::retryable("429")),
                Err(ProviderError::retryable("503")),
                Ok(7),
            ],
        )
        .await;
        assert_eq!(result, Ok(7));
        assert_eq!(
            attempts.iter().map(|a| a.number).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert!(
            attempts
                .iter()
                .all(|a| a.request_id == attempts[0].request_id)
        );
        // Full jitter: each wait lies between zero and the capped exponential backoff.
        let caps = [1, 2, 4, 4].map(Duration::from_secs);
        let sleeps = clock.sleeps();
        assert_eq!(sleeps.len(), 4);
        for (sleep, cap) in sleeps.iter().zip(caps) {
            assert!(*sleep <= cap, "{sleep:?} > {cap:?}");
        }
    }

    #[tokio::test]
    async fn retry_after_is_waited_exactly() {
        let clock = FakeClock::new();
        let throttled = ProviderError::retryable("429").with_retry_after(Duration::from_secs(17));
        let (result, _) = run(
            &policy(3),
            Idempotency::Idempotent,
            &clock,
            vec![Err(throttled), Ok(1)],
        )
        .await;
        assert_eq!(result, Ok(1));
        assert_eq!(clock.sleeps(), [Duration::from_secs(17)]);
        assert_eq!(parse_retry_after(" 17 "), Some(Duration::from_secs(17)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[tokio::test]
    async fn permanent_errors_and_non_idempotent_calls_are_not_retried() {
        for kind in [
            ErrorKind::Permanent,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::PreconditionFailed,
        ] {
            let clock = FakeClock::new();
            let error = ProviderError::new(kind, "no");
            let (result, attempts) = run(
                &policy(5),
                Idempotency::Idempotent,
                &clock,
                vec![Err(error.clone())],
            )
            .await;
            assert_eq!(result, Err(error));
            assert_eq!(attempts.len(), 1);
        }
        let clock = FakeClock::new();
        let (result, attempts) = run(
            &policy(5),
            Idempotency::NotIdempotent,
            &clock,
            vec![Err(ProviderError::retryable("503"))],
        )
        .await;
        assert!(result.is_err_and(|e| e.kind == ErrorKind::Retryable));
        assert_eq!(attempts.len(), 1);
        assert!(clock.sleeps().is_empty());
    }

    #[tokio::test]
    async fn a_call_that_is_not_idempotent_is_sent_again_only_when_the_target_did_not_act_on_it() {
        let clock = FakeClock::new();
        let (result, attempts) = run(
            &policy(5),
            Idempotency::NotIdempotent,
            &clock,
            vec![
                Err(ProviderError::retryable("429").with_unprocessed()),
                Err(ProviderError::retryable("429").with_unprocessed()),
                Ok(7),
            ],
        )
        .await;
        assert_eq!(result, Ok(7));
        assert_eq!(attempts.len(), 3);
        // A 503 may have been acted on: not sent again.
        let (result, attempts) = run(
            &policy(5),
            Idempotency::NotIdempotent,
            &clock,
            vec![
                Err(ProviderError::retryable("429").with_unprocessed()),
                Err(ProviderError::retryable("503")),
                Ok(7),
            ],
        )
        .await;
        assert!(result.is_err_and(|e| e.message.contains("503")));
        assert_eq!(attempts.len(), 2);
    }

    #[tokio::test]
    async fn retries_stop_at_max_attempts_and_at_the_deadline() {
        let clock = FakeClock::new();
        let (result, attempts) = run(
            &policy(3),
            Idempotency::Idempotent,
            &clock,
            (0..3)
                .map(|_| Err(ProviderError::retryable("503")))
                .collect(),
        )
        .await;
        assert!(result.is_err_and(|e| e.message.contains("gave up after 3 attempts")));
        assert_eq!(attempts.len(), 3);

        // The server asks for 10s, twice; the deadline allows 15s in all.
        let clock = FakeClock::new();
        let mut deadline = policy(10);
        deadline.deadline = Some(Duration::from_secs(15));
        let slow = || ProviderError::retryable("429").with_retry_after(Duration::from_secs(10));
        let (result, attempts) = run(
            &deadline,
            Idempotency::Idempotent,
            &clock,
            vec![Err(slow()), Err(slow())],
        )
        .await;
        assert!(result.is_err_and(|e| e.message.contains("gave up after 2 attempts")));
        assert_eq!(attempts.len(), 2);
        assert_eq!(clock.sleeps(), [Duration::from_secs(10)]);
    }

    #[tokio::test]
    async fn a_cancel_ends_the_wait_and_keeps_what_exists() {
        let cancel = Cancel::new();
        let mut slow = policy(5);
        slow.initial_backoff = Duration::from_secs(3600);
        slow.max_backoff = Duration::from_secs(3600);
        let waiting = tokio::spawn({
            let cancel = cancel.clone();
            async move {
                retry(&slow, Idempotency::Idempotent, &cancel, |_| async {
                    Err::<(), _>(
                        ProviderError::retryable("not ready")
                            .with_existing(serde_json::json!({"id": "x"}))
                            .with_retry_after(Duration::from_secs(3600)),
                    )
                })
                .await
            }
        });
        tokio::task::yield_now().await;
        cancel.cancel();
        let error = waiting.await.unwrap().unwrap_err();
        assert_eq!(error.kind, ErrorKind::Cancelled);
        assert_eq!(
            error.existing.as_deref(),
            Some(&serde_json::json!({"id": "x"}))
        );
    }
}
