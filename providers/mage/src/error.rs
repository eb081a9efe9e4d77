//! Turning I/O and format problems into [`ProviderError`]s that name the file involved.

use std::io;
use std::path::Path;

use weir_provider_sdk::ProviderError;

/// An I/O error on `path` while doing `action` ("read", "write", ...).
///
/// Interruptions and timeouts may go away on a retry; everything else (permissions, a missing
/// parent, a full disk, a file where a directory should be) will not.
pub(crate) fn io_error(action: &str, path: &Path, err: &io::Error) -> ProviderError {
    let message = format!("could not {action} {}: {err}", path.display());
    match err.kind() {
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            ProviderError::retryable(message)
        }
        _ => ProviderError::permanent(message),
    }
}

/// Attributes that do not have the shape this provider documents (a bug in lowering, or a
/// state file edited by hand).
/// `address` may be empty (at plan time the provider is not told the address).
pub(crate) fn bad_attributes(
    address: &str,
    type_name: &str,
    detail: impl std::fmt::Display,
) -> ProviderError {
    let prefix = if address.is_empty() {
        String::new()
    } else {
        format!("{address}: ")
    };
    ProviderError::permanent(format!(
        "{prefix}the attributes of this {type_name} do not have the expected shape: {detail}"
    ))
}
