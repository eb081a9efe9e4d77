"""More variables for Mage's notification templates.

Mage formats a template (``str.format``) in ``NotificationSender.__interpolate_vars`` with eight
names; any other placeholder raises ``KeyError`` when the alert is sent. The patch wraps that
method and hands it the template as a ``str`` whose ``format`` also supplies the runtime's
variables (Mage's own names win on a clash), so Mage keeps formatting the text itself.
"""

import datetime
import json
import sys

from weir_runtime import compat


# The name Python gives NotificationSender's private `__interpolate_vars`.
_INTERPOLATE = "_NotificationSender__interpolate_vars"
_INTERPOLATE_PARAMETERS = ("text", "pipeline", "pipeline_run", "error", "stacktrace")

# Keys Mage's `PipelineRun.get_variables` adds to a run's variables itself: not the run's.
_MAGE_VARIABLES = frozenset(
    {"ds", "hr", "env", "event", "execution_date", "execution_partition", "pipeline_run_id",
     "trigger_name"}
)

SENSITIVE = "(sensitive)"
UNKNOWN = "unknown"


class _Template(str):
    """A template whose `format` also supplies the runtime's variables."""

    def __new__(cls, text, extra):
        template = super().__new__(cls, text)
        template._extra = extra
        return template

    def format(self, *args, **kwargs):
        return str.format(self, *args, **{**self._extra, **kwargs})


def patch(module):
    if getattr(module, "_weir_patched", False):
        return
    settings = compat.checked_settings()
    version = compat.mage_version()
    sender = compat.require_attribute(module, module.__name__, "NotificationSender", version)
    original = compat.require_callable(
        sender, "NotificationSender", _INTERPOLATE, _INTERPOLATE_PARAMETERS, version
    )

    def interpolate_vars(self, text, pipeline, pipeline_run, *args, **kwargs):
        if text is not None and pipeline is not None and pipeline_run is not None:
            text = _Template(text, template_variables(settings, pipeline, pipeline_run))
        return original(self, text, pipeline, pipeline_run, *args, **kwargs)

    setattr(sender, _INTERPOLATE, interpolate_vars)
    module._weir_patched = True


def template_variables(settings, pipeline, pipeline_run, now=None):
    """The runtime's eight variables for a pipeline run. A value that cannot be read (a database
    error, say) is `unknown` and a warning goes to stderr: the alert still goes out."""
    now = now or datetime.datetime.now(datetime.timezone.utc)

    def read(name, compute):
        try:
            return compute()
        except Exception as e:  # the alert matters more than one of its values
            print(f"weir runtime: notification variable `{name}`: {type(e).__name__}: {e}",
                  file=sys.stderr)
            return UNKNOWN

    started = read("started_at", lambda: _utc(pipeline_run.started_at))
    finished = read("finished_at", lambda: _utc(pipeline_run.completed_at) or now)
    statuses = read("blocks", lambda: _block_statuses(pipeline_run))
    return {
        "pipeline_name": read("pipeline_name", lambda: pipeline.name or pipeline.uuid),
        "run_id": read("run_id", lambda: pipeline_run.id),
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "duration": duration(started, finished),
        "variables": read(
            "variables", lambda: run_variables(pipeline_run, settings.sensitive(pipeline.uuid))
        ),
        "completed_blocks": _blocks(statuses, "completed"),
        "failed_blocks": _blocks(statuses, "failed"),
    }


def run_variables(pipeline_run, sensitive):
    """The run's variables as JSON with sorted keys, without Mage's own keys, sensitive values
    masked."""
    variables = pipeline_run.get_variables() or {}
    shown = {
        k: (SENSITIVE if k in sensitive else v)
        for k, v in variables.items()
        if k not in _MAGE_VARIABLES and not k.startswith("interval_")
    }
    return json.dumps(shown, sort_keys=True, default=str)


def duration(started, finished):
    """`42s`, `3m07s`, `1h02m03s`; `unknown` without both times."""
    if not isinstance(started, datetime.datetime) or not isinstance(finished, datetime.datetime):
        return UNKNOWN
    seconds = max(0, int((finished - started).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{seconds:02d}s"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def _utc(value):
    if value is None:
        return None
    if value.tzinfo is None:  # Mage stores UTC; SQLite gives it back naive
        return value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


def _iso(value):
    if not isinstance(value, datetime.datetime):
        return UNKNOWN
    return value.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _block_statuses(pipeline_run):
    runs = sorted(pipeline_run.block_runs, key=lambda b: (b.id is None, b.id or 0))
    return [(b.block_uuid, str(getattr(b.status, "value", b.status))) for b in runs]


def _blocks(statuses, status):
    if not isinstance(statuses, list):
        return UNKNOWN
    uuids = [uuid for uuid, s in statuses if s == status]
    return ", ".join(uuids) if uuids else "none"
