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
use std::path::{Component, Path, PathBuf};

use weir_provider_sdk::fs::{FsError, Kind, RelPath, Root};

/// Why a file of the configuration is not read. `Display` completes a sentence that starts with
/// the path: "`blocks/load.py` is a symbolic link".
#[derive(Debug)]
pub enum FileError {
    /// The path leads outside the configuration directory (absolute, or through `..`).
    Outside,
    /// The path goes through a symbolic link: this one, relative to the configuration directory.
    Link(PathBuf),
    /// Not a regular file: what it is instead ("FIFO", "directory", …).
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
            FileError::NotAFile(what) => write!(f, "is a {what}, not a regular file"),
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

/// The configuration directory, open: every file below it is reached through it without
/// following a link (see [`weir_provider_sdk::fs`]).
fn open_root(root: &Path) -> Result<(PathBuf, Root), FileError> {
    let root = clean(&std::path::absolute(root).map_err(FileError::Io)?);
    match Root::open_trusted(&root) {
        Ok(Some(open)) => Ok((root, open)),
        Ok(None) => Err(FileError::NotFound),
        Err(err) => Err(FileError::Io(std::io::Error::other(err.to_string()))),
    }
}

/// `rel` (relative, made of normal components) as a path below a [`Root`].
fn rel_path(rel: &Path) -> Result<RelPath, FileError> {
    let raw = rel
        .to_str()
        .ok_or_else(|| FileError::Io(std::io::Error::other("the path is not valid UTF-8")))?;
    RelPath::parse(raw).map_err(|why| FileError::Io(std::io::Error::other(why)))
}

/// The error of a path below the configuration directory `root`, from the shared file access.
fn file_error(root: &Path, rel: &Path, err: FsError) -> FileError {
    match err {
        FsError::Symlink(full) => {
            let link = full.strip_prefix(root).unwrap_or(&full);
            FileError::Link(if link == rel {
                PathBuf::new()
            } else {
                link.to_path_buf()
            })
        }
        // A file where a folder of the path should be: nothing is at the path.
        FsError::NotDir(_) => FileError::NotFound,
        FsError::NotFile(_, kind) => FileError::NotAFile(kind),
        FsError::Io(_, err) => FileError::Io(err),
    }
}

/// What is at `rel` below `root`, reached without following links: `None` when nothing is
/// (or a folder on the way is missing or a file); a link at `rel` or on the way is an error.
pub fn kind_inside(root: &Path, rel: &Path) -> Result<Option<Kind>, FileError> {
    let (root, open) = open_root(root)?;
    match open.kind(&rel_path(rel)?) {
        Ok(Some(Kind::Symlink)) => Err(FileError::Link(PathBuf::new())),
        Ok(kind) => Ok(kind),
        Err(err) => Err(file_error(&root, rel, err)),
    }
}

/// Reads a file of the configuration: `path` is relative to the configuration directory `root`
/// (or absolute, inside it).
pub fn read_inside(root: &Path, path: &Path) -> Result<Vec<u8>, FileError> {
    let rel = relative_inside(root, path)?;
    if rel.as_os_str().is_empty() {
        return Err(FileError::NotAFile(
            "directory: the configuration directory itself",
        ));
    }
    let (root, open) = open_root(root)?;
    match open.read(&rel_path(&rel)?) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(FileError::NotFound),
        Err(err) => Err(file_error(&root, &rel, err)),
    }
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
