"""What the runtime checks before it patches Mage: its configuration, the installed Mage
version against the versions the runtime was tested with, and the Mage internals it patches."""

import importlib.metadata
import inspect

from weir_runtime import config

HOW_TO_TURN_OFF = (
    "To run Mage without the weir runtime, set `runtime { enabled = false }` in the deployment "
    "and apply (or start Mage without WEIR_RUNTIME=1); blocks with a resource profile and "
    "notification templates with weir's extra placeholders need the runtime."
)


class WeirRuntimeError(RuntimeError):
    """The runtime cannot run in this Mage. Not an ImportError, so that no `except ImportError`
    in Mage treats it as an optional module that is missing."""


def mage_version():
    try:
        return importlib.metadata.version("mage-ai")
    except importlib.metadata.PackageNotFoundError:
        raise WeirRuntimeError(
            "weir runtime: the mage-ai distribution is not installed in this Python "
            "(importlib.metadata finds no `mage-ai`), so its version cannot be checked. "
            + HOW_TO_TURN_OFF
        ) from None


def check_version(settings, version):
    """Raises unless `version` is one the runtime was tested with, or untested versions are
    allowed."""
    tested = settings.tested_mage_versions
    if version in tested or settings.allow_untested_mage:
        return
    raise WeirRuntimeError(
        f"weir runtime: Mage {version} is installed, but the weir runtime was tested only with "
        f"Mage {', '.join(tested) or '(no version)'}. Deploy an image with a tested Mage version, "
        "or set `runtime { allow_untested_mage = true }` in the deployment to run this one anyway "
        "(the runtime still stops if Mage's internals it patches differ). " + HOW_TO_TURN_OFF
    )


_checked = None


def checked_settings():
    """The runtime's configuration, after the version check: at the first patch of a process
    (the result, or the error, is kept for the next ones)."""
    global _checked
    if _checked is None:
        try:
            settings = config.load()
            check_version(settings, mage_version())
            _checked = settings
        except (config.ConfigError, WeirRuntimeError) as e:
            _checked = e if isinstance(e, WeirRuntimeError) else WeirRuntimeError(str(e))
    if isinstance(_checked, WeirRuntimeError):
        raise _checked
    return _checked


def missing_internal(version, what):
    return WeirRuntimeError(
        f"weir runtime: Mage {version} differs from the Mage the weir runtime was tested with: "
        f"{what}. The runtime patches this part of Mage, so it stops here instead of letting Mage "
        "run without it. " + HOW_TO_TURN_OFF
    )


def require_attribute(owner, owner_name, name, version):
    """`owner.name`, or an error naming the Mage version and what is missing."""
    try:
        return inspect.getattr_static(owner, name)
    except AttributeError:
        raise missing_internal(version, f"`{owner_name}.{name}` is missing") from None


def require_callable(owner, owner_name, name, parameters, version):
    """`owner.name`, which must be a function taking (at least) the named `parameters`, in that
    order (after `self`/`cls`); otherwise an error naming the Mage version and the difference."""
    found = require_attribute(owner, owner_name, name, version)
    function = found.__func__ if isinstance(found, (classmethod, staticmethod)) else found
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        raise missing_internal(version, f"`{owner_name}.{name}` is not a function") from None
    names = [
        p.name
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if names[:1] in (["self"], ["cls"]):
        names = names[1:]
    if names[: len(parameters)] != list(parameters):
        raise missing_internal(
            version,
            f"`{owner_name}.{name}` takes ({', '.join(names)}) where the runtime needs "
            f"({', '.join(parameters)}, ...)",
        )
    return found
