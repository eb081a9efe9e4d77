"""The weir runtime, loaded into Mage's processes by weir's ``sitecustomize``.

It changes two things in Mage, from inside Mage's own processes:

- a block that the deployment gives a resource profile runs on that profile's pre-created Cloud
  Run job (``profiles``), instead of in the scheduler or on a Cloud Run job created and deleted
  per block run;
- Mage's notification templates get eight more variables (``notifications``).

``install`` only puts an import hook on ``sys.meta_path`` (``hooks``): Mage's modules are patched
right after Mage loads them, and the configuration (``runtime.json``, next to this package) and
the Mage version are checked then (``compat``). A check that fails raises ``WeirRuntimeError``
out of Mage's import, so the process stops with the message instead of running Mage unpatched.
"""

# Mage module -> the runtime module whose `patch(module)` runs right after Mage loads it. Names
# only: `sitecustomize` runs in every Python process, so nothing here is imported until Mage is.
PATCHES = {
    "mage_ai.data_preparation.executors.executor_factory": "weir_runtime.profiles",
    "mage_ai.orchestration.notification.sender": "weir_runtime.notifications",
}


def install():
    """Installs the import hook that patches Mage's modules when they are loaded (once)."""
    from weir_runtime import hooks

    hooks.install(PATCHES)
