//! The weir runtime: a small Python package weir ships inside every Mage project it deploys
//! (under `weir/`), which Mage's processes load through `PYTHONPATH` and `sitecustomize` when
//! `WEIR_RUNTIME=1`. It runs blocks that have a resource profile on the profile's Cloud Run
//! job, and gives Mage's notification templates more variables. The Python sources are in
//! `providers/mage/runtime/`; `docs/runtime.md` says what it changes in Mage and why.

/// The folder of the Mage project the runtime lives in (and that goes on `PYTHONPATH`).
pub const DIR: &str = "weir";

/// The file, inside [`DIR`], that weir renders for the runtime: which blocks run on which job,
/// and the Mage versions the runtime was tested with.
pub const CONFIG_FILE: &str = "runtime.json";

/// The Mage versions the runtime was tested with: the single source of truth, rendered into
/// the runtime's configuration and checked by `weir plan` against the deployment's image.
pub const TESTED_MAGE_VERSIONS: &[&str] = &["0.9.80"];

/// The runtime's files: (path inside [`DIR`], contents).
pub const FILES: &[(&str, &str)] = &[
    (
        "sitecustomize.py",
        include_str!("../runtime/sitecustomize.py"),
    ),
    (
        "weir_runtime/__init__.py",
        include_str!("../runtime/weir_runtime/__init__.py"),
    ),
    (
        "weir_runtime/cloud_run.py",
        include_str!("../runtime/weir_runtime/cloud_run.py"),
    ),
    (
        "weir_runtime/compat.py",
        include_str!("../runtime/weir_runtime/compat.py"),
    ),
    (
        "weir_runtime/config.py",
        include_str!("../runtime/weir_runtime/config.py"),
    ),
    (
        "weir_runtime/hooks.py",
        include_str!("../runtime/weir_runtime/hooks.py"),
    ),
    (
        "weir_runtime/notifications.py",
        include_str!("../runtime/weir_runtime/notifications.py"),
    ),
    (
        "weir_runtime/profiles.py",
        include_str!("../runtime/weir_runtime/profiles.py"),
    ),
];
