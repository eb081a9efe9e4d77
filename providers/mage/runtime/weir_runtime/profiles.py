"""Blocks with a resource profile run on the profile's pre-created Cloud Run job.

Mage picks a block run's executor in ``ExecutorFactory.get_block_executor``. The patch answers
the weir executor there for a block listed in ``runtime.json``'s ``blocks``, when no executor type
was forced: the job's own ``mage run ... --executor-type local_python`` forces one, so the block
run inside the job runs in that process, never on a job again. Everything else is Mage's choice.

The executor does what Mage's Cloud Run executor does, on an existing job: it builds Mage's own
command for the block run, runs the job with that command as the container's args, and waits for
the execution. ``mage run`` in the job writes the block run's status, as with Mage's executor. If
the execution failed (or could not be started, or timed out) and the block run is not marked
failed, the executor marks it failed through the scheduler's failure callback, so that the run
ends instead of waiting for a block run that will never finish.
"""


from weir_runtime import cloud_run, compat


# The entry point Mage puts in front of its command; the job's container command execs its args.
ENTRY_POINT = "/app/run_app.sh"

# Waiting for an execution: its task's timeout, plus this much for starting the container (the
# image pull, Mage's imports) and for Cloud Run to report the end.
TIMEOUT_MARGIN_SECONDS = 300

_GET_BLOCK_EXECUTOR_PARAMETERS = (
    "pipeline", "block_uuid", "block_run_id", "execution_partition", "executor_type"
)
_BLOCK_EXECUTOR_INIT_PARAMETERS = ("pipeline", "block_uuid", "execution_partition", "block_run_id")
_RUN_COMMANDS_PARAMETERS = ("block_run_id", "global_vars", "pipeline_run_id")


def check_internals(version, factory, block_executor, block_run):
    """The parts of Mage the executor relies on, or an error naming what differs; returns the
    function of Mage's `ExecutorFactory.get_block_executor`."""
    get_block_executor = compat.require_callable(
        factory, "ExecutorFactory", "get_block_executor", _GET_BLOCK_EXECUTOR_PARAMETERS, version
    )
    if not isinstance(get_block_executor, classmethod):
        raise compat.missing_internal(
            version, "`ExecutorFactory.get_block_executor` is not a class method"
        )
    compat.require_callable(
        block_executor, "BlockExecutor", "__init__", _BLOCK_EXECUTOR_INIT_PARAMETERS, version
    )
    compat.require_callable(
        block_executor, "BlockExecutor", "_run_commands", _RUN_COMMANDS_PARAMETERS, version
    )
    compat.require_attribute(block_run, "BlockRun", "query", version)
    statuses = compat.require_attribute(block_run, "BlockRun", "BlockRunStatus", version)
    compat.require_attribute(statuses, "BlockRun.BlockRunStatus", "FAILED", version)
    return get_block_executor.__func__


def patch(module):
    if getattr(module, "_weir_patched", False):
        return
    settings = compat.checked_settings()
    version = compat.mage_version()
    factory = compat.require_attribute(module, module.__name__, "ExecutorFactory", version)
    block_executor = compat.require_attribute(module, module.__name__, "BlockExecutor", version)
    try:
        from mage_ai.orchestration.db.models.schedules import BlockRun
    except ImportError as e:
        raise compat.missing_internal(
            version, f"`mage_ai.orchestration.db.models.schedules.BlockRun` cannot be imported: {e}"
        ) from None

    original = check_internals(version, factory, block_executor, BlockRun)
    executor_class = _executor_class(block_executor, BlockRun, version)

    def get_block_executor(
        cls, pipeline, block_uuid, block_run_id=None, execution_partition=None, executor_type=None
    ):
        if executor_type is None:
            job = _block_job(settings, pipeline, block_uuid)
            if job is not None:
                return executor_class(
                    pipeline,
                    block_uuid,
                    execution_partition=execution_partition,
                    block_run_id=block_run_id,
                    job=job,
                )
        return original(
            cls,
            pipeline,
            block_uuid,
            block_run_id=block_run_id,
            execution_partition=execution_partition,
            executor_type=executor_type,
        )

    factory.get_block_executor = classmethod(get_block_executor)
    module._weir_patched = True


def _block_job(settings, pipeline, block_uuid):
    jobs = settings.blocks.get(pipeline.uuid)
    if not jobs:
        return None
    job = jobs.get(block_uuid)
    if job is None:
        # A dynamic child's block run (`<block>:<index>`) runs its block's code.
        block = pipeline.get_block(block_uuid, check_template=True)
        job = jobs.get(block.uuid) if block is not None else None
    return job


def _executor_class(block_executor, block_run_model, version):
    class WeirJobBlockExecutor(block_executor):
        """Runs the block run on its profile's Cloud Run job."""

        def __init__(self, pipeline, block_uuid, execution_partition=None, block_run_id=None,
                     job=None):
            super().__init__(
                pipeline,
                block_uuid,
                execution_partition=execution_partition,
                block_run_id=block_run_id,
            )
            self.job = job

        def execute(self, block_run_id=None, global_vars=None, on_failure=None,
                    pipeline_run_id=None, client=None, **kwargs):
            command = self._run_commands(
                block_run_id=block_run_id,
                global_vars=global_vars,
                pipeline_run_id=pipeline_run_id,
                **kwargs,
            )
            if not command or command[0] != ENTRY_POINT:
                raise compat.missing_internal(
                    version,
                    f"BlockExecutor._run_commands no longer starts with {ENTRY_POINT} "
                    f"(it gives {command[:1]})",
                )
            args = command[1:]
            tags = dict(block_uuid=self.block_uuid, block_run_id=block_run_id,
                        job=self.job.job, profile=self.job.profile)
            client = client or cloud_run.Client()
            self.logger.info(
                f"weir runtime: running block {self.block_uuid} on Cloud Run job {self.job.job} "
                f"(profile {self.job.profile})",
                **tags,
            )
            try:
                operation = client.run_job(self.job.job, args)
                deadline = client.clock() + self.job.timeout_seconds + TIMEOUT_MARGIN_SECONDS
                operation = client.wait(operation, deadline)
                succeeded, why = cloud_run.execution_outcome(operation)
            except cloud_run.CloudRunError as e:
                succeeded, why = False, str(e)
            if succeeded:
                self.logger.info(f"weir runtime: {why}", **tags)
            else:
                self.logger.error(f"weir runtime: block {self.block_uuid}: {why}", **tags)
                self._fail(block_run_id, on_failure, why)
            return dict(succeeded=succeeded, outcome=why)

        def _fail(self, block_run_id, on_failure, why):
            """Marks the block run failed unless `mage run` in the job already did."""
            if block_run_id is None:
                return
            block_run = block_run_model.query.get(block_run_id)
            if block_run is None:
                return
            block_run.refresh()
            if block_run.status == block_run_model.BlockRunStatus.FAILED:
                return
            error = RuntimeError(f"weir runtime: {why}")
            if on_failure is not None:
                on_failure(self.block_uuid, error=dict(error=error, errors=None, message=str(error)))
            else:
                block_run.update(status=block_run_model.BlockRunStatus.FAILED)

    return WeirJobBlockExecutor


