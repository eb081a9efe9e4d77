//! Reading the files of a configuration without leaving its directory.
//!
//! weir runs in CI with cloud credentials on configurations that anyone who can open a pull
//! request can edit, and prints what it reads (block code, in the plan). So a file the
//! configuration names — a `*.hcl` or `*.auto.tfvars` file, a block's `source`, the path given to
//! `file()` or `templatefile()` — is read only if it lies inside the configuration directory,
//! reached without following a symbolic link (one could point at a credentials file anywhere on
//! the machine), and is a regular file: a FIFO would hang the read and a device could be read
//! forever.

use std::fmt;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Why a file of the configuration is not read. `Display` completes a sentence that starts with
/// the path: "`blocks/load.py` is a symbolic link".
#[derive(Debug)]
pub enum FileError {
    /// The path leads outside the configuration directory (absolute, or through `..`).
    Outside,
    /// The path goes through a symbolic link: this one, relative to the configuration directory.
    Link(PathBuf),
    /// Not a regular file: what it is instead ("a FIFO", "a directory", …).
    NotAFile(&'static str),
    NotFound,
    Io(std::io::Error),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Outside => write!(f, "is outside the configuration directory"),
            FileError::Link(link) if link.as_os_str().is_empty() => {
                write!(f, "is a symbolic link")
            }
            FileError::Link(link) => {
                write!(f, "goes through the symbolic link `{}`", link.display())
            }
            FileError::NotAFile(what) => write!(f, "is {what}, not a regular file"),
            FileError::NotFound => write!(f, "does not exist"),
            FileError::Io(err) => write!(f, "cannot be read: {err}"),
        }
    }
}

impl FileError {
    /// What to do about it, for the help of a diagnostic.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            FileError::Outside | FileError::Link(_) => Some(
                "weir reads only files inside the configuration directory (the one given with -C), and never through a symbolic link, which could point anywhere on the machine: copy the file into the configuration directory",
            ),
            FileError::NotAFile(_) => Some("name a regular file"),
            FileError::NotFound | FileError::Io(_) => None,
        }
    }
}

/// Removes `.` and resolves `..` lexically. Exact here, because no component that is a link is
/// ever followed.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `path` (relative to `root`, or absolute) as a path relative to `root`, resolved lexically; an
/// empty path is `root` itself.
pub fn relative_inside(root: &Path, path: &Path) -> Result<PathBuf, FileError> {
    let root = clean(&std::path::absolute(root).map_err(FileError::Io)?);
    let full = clean(&root.join(path));
    full.strip_prefix(&root)
        .map(Path::to_path_buf)
        .map_err(|_| FileError::Outside)
}

/// What a file type is, in words.
fn describe(file_type: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_block_device() || file_type.is_char_device() {
            return "a device";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Walks `rel` down from `root` without following links. Returns the metadata of the last
/// component, or `None` for the first one that does not exist (with everything above it a
/// directory).
pub fn walk(root: &Path, rel: &Path) -> Result<Option<std::fs::Metadata>, FileError> {
    let mut current = root.to_path_buf();
    let mut shown = PathBuf::new();
    let mut components = rel.components().peekable();
    while let Some(component) = components.next() {
        current.push(component);
        shown.push(component);
        let meta = match std::fs::symlink_metadata(&current) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(FileError::Io(err)),
        };
        let last = components.peek().is_none();
        if meta.file_type().is_symlink() {
            return Err(FileError::Link(if last { PathBuf::new() } else { shown }));
        }
        if last {
            return Ok(Some(meta));
        }
        if !meta.is_dir() {
            return Ok(None);
        }
    }
    Ok(None)
}

/// Reads a file of the configuration: `path` is relative to the configuration directory `root`
/// (or absolute, inside it).
pub fn read_inside(root: &Path, path: &Path) -> Result<Vec<u8>, FileError> {
    let rel = relative_inside(root, path)?;
    if rel.as_os_str().is_empty() {
        return Err(FileError::NotAFile("the configuration directory"));
    }
    let root = clean(&std::path::absolute(root).map_err(FileError::Io)?);
    // The type is checked before opening: opening a FIFO for reading waits for a writer, and
    // opening a device may do something.
    match walk(&root, &rel)? {
        None => return Err(FileError::NotFound),
        Some(meta) if !meta.is_file() => {
            return Err(FileError::NotAFile(describe(meta.file_type())));
        }
        Some(_) => {}
    }
    // Opened without following a link and without blocking, in case the file was swapped for a
    // link or a FIFO since; then checked again on the open file. (A directory above it swapped
    // for a link in between is not caught: that takes someone racing weir on this machine, who
    // could as well edit the configuration.)
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let mut file = options
        .open(root.join(&rel))
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => FileError::NotFound,
            _ if is_link_refused(&err) => FileError::Link(PathBuf::new()),
            _ => FileError::Io(err),
        })?;
    let meta = file.metadata().map_err(FileError::Io)?;
    if !meta.is_file() {
        return Err(FileError::NotAFile(describe(meta.file_type())));
    }
    // The size only hints: a sparse file may claim far more than it holds.
    let mut bytes = Vec::with_capacity(meta.len().min(1 << 20) as usize);
    file.read_to_end(&mut bytes).map_err(FileError::Io)?;
    Ok(bytes)
}

/// Whether opening failed because `O_NOFOLLOW` met a link.
fn is_link_refused(err: &std::io::Error) -> bool {
    #[cfg(unix)]
    return err.raw_os_error() == Some(libc::ELOOP);
    #[cfg(not(unix))]
    return false;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_lexically_inside_the_root() {
        let root = Path::new("/srv/config");
        let rel = |p: &str| relative_inside(root, Path::new(p));
        assert_eq!(rel("blocks/a.py").unwrap(), Path::new("blocks/a.py"));
        assert_eq!(rel("./blocks/../a.py").unwrap(), Path::new("a.py"));
        assert_eq!(rel("/srv/config/a.py").unwrap(), Path::new("a.py"));
        for itself in [".", "./", "a/..", "../config", "/srv/config"] {
            assert_eq!(rel(itself).unwrap(), Path::new(""), "{itself}");
        }
        for outside in ["..", "../other/a.py", "/etc/passwd", "a/../../b", "/work"] {
            assert!(matches!(rel(outside), Err(FileError::Outside)), "{outside}");
        }
    }
}
