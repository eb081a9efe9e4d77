# Written by weir: loads the weir runtime into every Python process of the Mage project when
# WEIR_RUNTIME=1 (see weir_runtime). Does nothing otherwise.
import os

if os.environ.get("WEIR_RUNTIME") == "1":
    import weir_runtime

    weir_runtime.install()
