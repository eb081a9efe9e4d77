"""The weir runtime: runs blocks with a resource profile on the profile's Cloud Run job and adds
variables to Mage's notification templates. Work in progress."""


def install():
    raise RuntimeError("weir runtime: not built yet")
