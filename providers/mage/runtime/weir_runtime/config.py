"""``runtime.json``: the runtime's configuration, rendered by weir next to this package."""

import json
import os
import re
from dataclasses import dataclass, field

FORMAT = 1

# A Cloud Run job's full name. Its parts become URL path segments: no `/`, `?`, `#`, `%`, and no
# `.`/`..` segments.
_JOB_NAME = re.compile(
    r"projects/[A-Za-z0-9][A-Za-z0-9.:_-]*/locations/[a-z0-9-]+/jobs/[a-z0-9][a-z0-9-]*"
)


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class BlockJob:
    """Where a block with a resource profile runs."""

    profile: str
    job: str
    timeout_seconds: int


@dataclass(frozen=True)
class Settings:
    deployment: str
    target: str
    tested_mage_versions: tuple
    allow_untested_mage: bool
    # pipeline uuid -> block uuid -> BlockJob
    blocks: dict = field(default_factory=dict)
    # pipeline uuid -> frozenset of variable names
    sensitive_variables: dict = field(default_factory=dict)

    def block_job(self, pipeline_uuid, block_uuid):
        return self.blocks.get(pipeline_uuid, {}).get(block_uuid)

    def sensitive(self, pipeline_uuid):
        return self.sensitive_variables.get(pipeline_uuid, frozenset())


def path():
    """``runtime.json`` in the folder that holds this package (the project's ``weir/``)."""
    package_dir = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(package_dir), "runtime.json")


def load(file=None):
    file = file or path()
    try:
        with open(file, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(
            f"weir runtime: cannot read its configuration {file}: {e.strerror or e}. weir writes "
            "it with the runtime's files; apply the deployment again."
        ) from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"weir runtime: {file} is not valid JSON: {e}") from None
    return parse(data, file)


def parse(data, file="runtime.json"):
    def fail(what):
        raise ConfigError(f"weir runtime: {file}: {what}; apply the deployment again to rewrite it")

    if not isinstance(data, dict):
        fail("expected a JSON object")
    if data.get("format") != FORMAT:
        fail(f"`format` is {data.get('format')!r}, this runtime reads format {FORMAT}")
    tested = data.get("tested_mage_versions")
    if not isinstance(tested, list) or not all(isinstance(v, str) for v in tested):
        fail("`tested_mage_versions` must be a list of version strings")
    allow = data.get("allow_untested_mage", False)
    if not isinstance(allow, bool):
        fail("`allow_untested_mage` must be true or false")
    for key in ("deployment", "target"):
        if not isinstance(data.get(key), str):
            fail(f"`{key}` must be a string")

    blocks = {}
    raw_blocks = data.get("blocks", {})
    if not isinstance(raw_blocks, dict):
        fail("`blocks` must be an object of pipelines")
    for pipeline, pipeline_blocks in raw_blocks.items():
        if not isinstance(pipeline_blocks, dict):
            fail(f"`blocks.{pipeline}` must be an object of blocks")
        blocks[pipeline] = {}
        for block, entry in pipeline_blocks.items():
            where = f"`blocks.{pipeline}.{block}`"
            if not isinstance(entry, dict):
                fail(f"{where} must be an object")
            job = entry.get("job")
            if not isinstance(job, str) or not _JOB_NAME.fullmatch(job):
                fail(f"{where}.job must be a job name projects/<p>/locations/<region>/jobs/<job>")
            timeout = entry.get("timeout_seconds")
            if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
                fail(f"{where}.timeout_seconds must be a positive whole number")
            profile = entry.get("profile")
            if not isinstance(profile, str):
                fail(f"{where}.profile must be a string")
            blocks[pipeline][block] = BlockJob(profile, job, timeout)

    sensitive = {}
    raw_sensitive = data.get("sensitive_variables", {})
    if not isinstance(raw_sensitive, dict):
        fail("`sensitive_variables` must be an object of pipelines")
    for pipeline, names in raw_sensitive.items():
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            fail(f"`sensitive_variables.{pipeline}` must be a list of variable names")
        sensitive[pipeline] = frozenset(names)

    return Settings(
        deployment=data["deployment"],
        target=data["target"],
        tested_mage_versions=tuple(tested),
        allow_untested_mage=allow,
        blocks=blocks,
        sensitive_variables=sensitive,
    )
