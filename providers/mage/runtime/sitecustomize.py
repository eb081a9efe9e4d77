# Written by weir. Python imports this module at start-up when this folder is on PYTHONPATH.
# With WEIR_RUNTIME=1 it installs the weir runtime's import hook, which patches Mage's modules
# right after Mage loads them (see weir_runtime); it never imports Mage itself, so a Python
# process that does not use Mage pays for one small import. Any other value: nothing at all.
import os

if os.environ.get("WEIR_RUNTIME") == "1":
    import weir_runtime

    weir_runtime.install()
