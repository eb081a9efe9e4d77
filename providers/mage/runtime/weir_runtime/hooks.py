"""The post-import hook: runs a patch on a module right after Python has executed it.

Python's ``sys.meta_path`` finders are asked for every import. Ours answers only for the module
names it patches: it asks the other finders for the real spec, and wraps the spec's loader so that
the patch runs after the module's code. An exception from the patch propagates out of the import
(Python then removes the half-imported module from ``sys.modules``), so every later import of the
module fails the same way: Mage never runs with the module unpatched.
"""

import importlib
import sys

# Plain classes, not importlib.abc's: importing importlib.abc costs more than all of this module.


class _PatchingLoader:
    def __init__(self, loader, patch):
        self._loader = loader
        self._patch = patch

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # A reload runs the module's code again over the same module object: patch it again.
        module.__dict__.pop("_weir_patched", None)
        self._loader.exec_module(module)
        importlib.import_module(self._patch).patch(module)

    def __getattr__(self, name):
        # get_source, get_code, is_package, resource readers: the real loader's.
        return getattr(self._loader, name)


class PatchFinder:
    """Finds nothing itself; wraps the loader of the modules it has a patch for (Mage module name
    -> name of the runtime module whose `patch(module)` patches it)."""

    def __init__(self, patches):
        self.patches = dict(patches)

    def find_spec(self, fullname, path, target=None):
        patch = self.patches.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchingLoader(spec.loader, patch)
                return spec
        return None


def install(patches):
    """Puts a ``PatchFinder`` first on ``sys.meta_path`` (once per process) and patches the
    modules already loaded (none when called from ``sitecustomize``)."""
    if any(isinstance(f, PatchFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, PatchFinder(patches))
    for name, patch in patches.items():
        module = sys.modules.get(name)
        if module is not None:
            importlib.import_module(patch).patch(module)
