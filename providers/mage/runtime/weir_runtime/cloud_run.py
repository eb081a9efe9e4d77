"""Running a pre-created Cloud Run job with argument overrides, and waiting for its execution,
over Cloud Run's v2 REST API.

Retries. Reading an operation is idempotent: a poll is repeated on 429, 5xx and connection
errors, a bounded number of times in a row. Running a job is not: a `:run` that Cloud Run
received starts an execution, and a second one would run the block twice. So the `:run` POST is
repeated only when Cloud Run certainly did not start anything: the connection could not be opened
(the request was never sent), or Cloud Run answered 429 (it refused the request). An answer lost
after the request was sent (a reset, a read timeout, a 5xx) is not retried: the block run fails
with a message saying an execution may have started.
"""

import os
import re
import time

import requests
import urllib3

HOST = "run.googleapis.com"
METADATA_TOKEN_URL = (
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
)
SANDBOX_TOKEN = "weir-sandbox"

REQUEST_TIMEOUT = 30  # seconds, each HTTP request
RUN_ATTEMPTS = 4
POLL_FAILURES_IN_A_ROW = 6
POLL_FIRST_INTERVAL = 0.5
POLL_MAX_INTERVAL = 10.0
BACKOFF_MAX = 16.0

_OPERATION_NAME = re.compile(r"projects/[^/?#%]+/locations/[^/?#%]+/operations/[^/?#%]+")


class CloudRunError(Exception):
    pass


def _never_sent(error):
    """Whether a requests error means the connection was never opened (nothing was sent)."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(error, requests.exceptions.ConnectionError):
        reason = error.args[0] if error.args else None
        reason = getattr(reason, "reason", reason)
        return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)  # refused, DNS too
    return False


def _retryable_status(status):
    return status == 429 or status >= 500


def _describe(response):
    try:
        message = response.json().get("error", {}).get("message")
    except ValueError:
        message = None
    return f"HTTP {response.status_code}" + (f": {message}" if message else "")


class Client:
    def __init__(self, endpoint=None, session=None, sleep=time.sleep, clock=time.monotonic):
        self.endpoint = endpoint if endpoint is not None else os.environ.get("WEIR_GOOGLE_ENDPOINT")
        self.session = session or requests.Session()
        self.sleep = sleep
        self.clock = clock
        self._token = None
        self._token_expires = 0.0

    # -- the two calls ---------------------------------------------------------------------

    def run_job(self, job, args):
        """Starts an execution of `job` with the container's args replaced; returns the
        operation."""
        body = {"overrides": {"containerOverrides": [{"args": list(args)}]}}
        url = self._url(f"/v2/{job}:run")
        for attempt in range(RUN_ATTEMPTS):
            last = attempt == RUN_ATTEMPTS - 1
            try:
                response = self.session.post(
                    url, json=body, headers=self._headers(), timeout=REQUEST_TIMEOUT
                )
            except requests.exceptions.RequestException as e:
                if _never_sent(e) and not last:
                    self._backoff(attempt)
                    continue
                raise CloudRunError(
                    f"running Cloud Run job {job} failed ({type(e).__name__}: {e})"
                    + ("" if _never_sent(e) else "; an execution may have started")
                ) from None
            if response.status_code == 429 and not last:
                self._backoff(attempt, response)
                continue
            if response.status_code != 200:
                may = "; an execution may have started" if response.status_code >= 500 else ""
                raise CloudRunError(
                    f"running Cloud Run job {job} failed: {_describe(response)}{may}"
                )
            return self._json(response, f"running Cloud Run job {job}")
        raise CloudRunError(f"running Cloud Run job {job} failed")  # not reached

    def wait(self, operation, deadline):
        """Polls `operation` until it is done or `deadline` (a `clock` value) passes; returns
        the done operation."""
        interval = POLL_FIRST_INTERVAL
        while not operation.get("done"):
            name = operation.get("name")
            if not isinstance(name, str) or not _OPERATION_NAME.fullmatch(name):
                raise CloudRunError(f"Cloud Run answered an operation without a valid name: {name!r}")
            if self.clock() >= deadline:
                raise CloudRunError(f"timed out waiting for Cloud Run operation {name}")
            self.sleep(interval)
            interval = min(interval * 2, POLL_MAX_INTERVAL)
            operation = self._get_operation(name)
        return operation

    # -- helpers -----------------------------------------------------------------------------

    def _get_operation(self, name):
        url = self._url(f"/v2/{name}")
        failures = 0
        while True:
            failure = None
            try:
                response = self.session.get(url, headers=self._headers(), timeout=REQUEST_TIMEOUT)
            except requests.exceptions.RequestException as e:
                failure, response = f"{type(e).__name__}: {e}", None
            if response is not None:
                if response.status_code == 200:
                    return self._json(response, f"reading Cloud Run operation {name}")
                if not _retryable_status(response.status_code):
                    raise CloudRunError(
                        f"reading Cloud Run operation {name} failed: {_describe(response)}"
                    )
                failure = _describe(response)
            failures += 1
            if failures >= POLL_FAILURES_IN_A_ROW:
                raise CloudRunError(
                    f"reading Cloud Run operation {name} failed {failures} times in a row, "
                    f"last: {failure}"
                )
            self._backoff(failures - 1, response)

    def _backoff(self, attempt, response=None):
        delay = min(2.0**attempt, BACKOFF_MAX)
        if response is not None:
            try:
                delay = min(float(response.headers.get("Retry-After", delay)), BACKOFF_MAX)
            except ValueError:
                pass
        self.sleep(delay)

    @staticmethod
    def _json(response, what):
        try:
            data = response.json()
        except ValueError:
            raise CloudRunError(f"{what}: Cloud Run's answer is not JSON") from None
        if not isinstance(data, dict):
            raise CloudRunError(f"{what}: Cloud Run's answer is not a JSON object")
        return data

    def _url(self, path):
        return (self.endpoint.rstrip("/") if self.endpoint else f"https://{HOST}") + path

    def _headers(self):
        if self.endpoint:
            return {"Host": HOST, "Authorization": f"Bearer {SANDBOX_TOKEN}"}
        return {"Authorization": f"Bearer {self._access_token()}"}

    def _access_token(self):
        if self._token and self.clock() < self._token_expires:
            return self._token
        for attempt in range(RUN_ATTEMPTS):
            try:
                response = self.session.get(
                    METADATA_TOKEN_URL,
                    headers={"Metadata-Flavor": "Google"},
                    timeout=REQUEST_TIMEOUT,
                )
                if response.status_code == 200:
                    data = response.json()
                    self._token = data["access_token"]
                    self._token_expires = self.clock() + max(0, int(data.get("expires_in", 0)) - 60)
                    return self._token
                failure = f"HTTP {response.status_code}"
            except (requests.exceptions.RequestException, ValueError, KeyError, TypeError) as e:
                failure = type(e).__name__
            if attempt < RUN_ATTEMPTS - 1:
                self._backoff(attempt)
        raise CloudRunError(
            f"cannot get an access token from the metadata server ({failure}); the runtime "
            "needs the service account of the Cloud Run service or VM it runs in"
        )


def execution_outcome(operation):
    """(succeeded, why) of a done `:run` operation: Cloud Run ends it with an `error` when the
    execution failed, or with the Execution as `response` (whose counts and `Completed`
    condition say how it ended)."""
    error = operation.get("error")
    if error:
        message = error.get("message") if isinstance(error, dict) else None
        return False, f"the execution failed: {message or error}"
    execution = operation.get("response")
    if not isinstance(execution, dict):
        return False, "the operation ended without an execution"
    name = execution.get("name", "the execution")
    conditions = execution.get("conditions")
    completed = next(
        (
            c
            for c in (conditions if isinstance(conditions, list) else [])
            if isinstance(c, dict) and c.get("type") == "Completed"
        ),
        {},
    )
    message = completed.get("message")
    failed = _count(execution, "failedCount") + _count(execution, "cancelledCount")
    succeeded = _count(execution, "succeededCount")
    tasks = _count(execution, "taskCount") or 1
    if failed or completed.get("state") == "CONDITION_FAILED":
        return False, f"{name} failed" + (f": {message}" if message else "")
    if succeeded >= tasks:
        return True, f"{name} succeeded"
    return False, f"{name} ended without succeeding" + (f": {message}" if message else "")


def _count(execution, key):
    """A count of the Execution (an int32, which JSON may carry as a string); 0 if unreadable."""
    try:
        return max(0, int(execution.get(key) or 0))
    except (TypeError, ValueError):
        return 0
