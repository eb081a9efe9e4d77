//! File-system access below a directory that never follows a symbolic link.
//!
//! weir runs in CI with cloud credentials on configurations anyone who can open a pull request
//! can edit, so every path it touches below a directory it was given (the configuration
//! directory, a Mage project, the state's folder) is reached from that directory's own file
//! descriptor, one component at a time, with `O_NOFOLLOW` (`openat`-style, as the `cap-std`
//! crate does): a folder or file replaced by a link to somewhere else is refused with an error
//! naming it, never written, read or deleted through. Files are opened with `O_NONBLOCK` and
//! checked to be regular files on the open descriptor, so a FIFO or a device where a file is
//! expected is an error, never a hang.
//!
//! Writes are atomic: a temporary file (`.weir-tmp-*`) in the same directory, written and
//! fsynced, then renamed over the file, then the directory fsynced. A reader (or a crash) sees
//! either the old content or the new one, never half of it; [`Root::remove_stale_temps`]
//! removes the temporary files a killed run leaves behind.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::ProviderError;

/// The prefix of weir's temporary files (see [`Root::write_atomic`]).
pub const TEMP_PREFIX: &str = ".weir-tmp-";

/// Permissions of a file anyone on the machine may read (Mage often runs as another user).
pub const MODE_PUBLIC: u32 = 0o644;
/// Permissions of a file that holds a secret: its owner only, like weir's state.
pub const MODE_PRIVATE: u32 = 0o600;

/// Why a path below a [`Root`] could not be used.
#[derive(Debug)]
pub enum FsError {
    Io(PathBuf, io::Error),
    /// A symbolic link where a file or directory was expected.
    Symlink(PathBuf),
    /// Something other than a directory where a directory was expected.
    NotDir(PathBuf),
    /// Something other than a regular file (a directory, FIFO, device, socket) where a file
    /// was expected.
    NotFile(PathBuf, &'static str),
}

impl std::fmt::Display for FsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsError::Io(path, err) => write!(f, "{}: {err}", path.display()),
            FsError::Symlink(path) => write!(f, "{} is a symbolic link", path.display()),
            FsError::NotDir(path) => write!(f, "{} is not a directory", path.display()),
            FsError::NotFile(path, kind) => {
                write!(f, "{} is a {kind}, not a regular file", path.display())
            }
        }
    }
}

impl FsError {
    /// The error a user sees: `action` (`"write"`, `"read"`, …) on `target` failed because of
    /// what is at the path involved.
    pub fn to_provider(&self, action: &str, target: &Path) -> ProviderError {
        match self {
            FsError::Io(path, err) => {
                let message = format!("could not {action} {}: {err}", path.display());
                match err.kind() {
                    io::ErrorKind::Interrupted
                    | io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut => ProviderError::retryable(message),
                    _ => ProviderError::permanent(message),
                }
            }
            FsError::Symlink(path) => ProviderError::permanent(format!(
                "refusing to {action} {}: {} is a symbolic link, and weir never follows links (one could point anywhere outside the directory it works in)",
                target.display(),
                path.display()
            ))
            .with_help("replace the link with a real directory or file (or remove it), then run weir again"),
            FsError::NotDir(path) => ProviderError::permanent(format!(
                "cannot {action} {}: {} is not a directory",
                target.display(),
                path.display()
            ))
            .with_help("move it away, then run weir again"),
            FsError::NotFile(path, kind) => ProviderError::permanent(format!(
                "refusing to {action} {}: {} is a {kind}, not a regular file",
                target.display(),
                path.display()
            ))
            .with_help("move it away, then run weir again"),
        }
    }
}

pub type FsResult<T> = Result<T, FsError>;

/// What the file described by `meta` is, in words ("FIFO", "directory", "regular file", …),
/// for messages about a file found where another kind was expected.
pub fn describe(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::MetadataExt;
    kind_name(FileType::from_raw_mode(meta.mode()))
}

fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "special file",
    }
}

/// What is at a path, without following a link there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other(&'static str),
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// A directory, open. Every path below it is reached through this descriptor.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    fd: OwnedFd,
}

impl Root {
    /// Opens the directory `path` (which must be a real directory, not a symbolic link);
    /// `None` when it does not exist and `create` is false.
    pub fn open(path: &Path, create: bool) -> FsResult<Option<Root>> {
        // Without a trailing slash (which would make the kernel follow a last-component link).
        let path: PathBuf = path.components().collect();
        let io = |e: Errno| FsError::Io(path.clone(), e.into());
        let mut created = false;
        loop {
            match rfs::open(&path, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => return Ok(Some(Root { path, fd })),
                Err(Errno::NOENT) if create && !created => {
                    if let Some(parent) = path.parent() {
                        fs::create_dir_all(parent)
                            .map_err(|e| FsError::Io(parent.to_path_buf(), e))?;
                    }
                    match rfs::mkdir(&path, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => created = true,
                        Err(e) => return Err(io(e)),
                    }
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
                    return Err(match fs::symlink_metadata(&path) {
                        Ok(m) if m.file_type().is_symlink() => FsError::Symlink(path),
                        Ok(_) => FsError::NotDir(path),
                        Err(_) => io(e),
                    });
                }
                Err(e) => return Err(io(e)),
            }
        }
    }

    /// Opens the directory `path` the user named (`-C DIR`, the current directory), following
    /// links on the way to it as any program would: only what lies below it is held to the
    /// no-link rule. `None` when it does not exist.
    pub fn open_trusted(path: &Path) -> FsResult<Option<Root>> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match rfs::open(path, flags, Mode::empty()) {
            Ok(fd) => Ok(Some(Root {
                path: path.to_path_buf(),
                fd,
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(Errno::NOTDIR) => Err(FsError::NotDir(path.to_path_buf())),
            Err(e) => Err(FsError::Io(path.to_path_buf(), e.into())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `parts` under the project directory (for messages).
    fn display_path(&self, parts: &[String]) -> PathBuf {
        let mut path = self.path.clone();
        path.extend(parts);
        path
    }

    /// Opens the directory `parts` below the root, one component at a time without following
    /// links; creates missing ones when `create` is set (their keys are added to `created`).
    /// `None` when one is missing and `create` is false.
    fn open_dir(
        &self,
        parts: &[String],
        create: bool,
        mut created: Option<&mut Vec<String>>,
    ) -> FsResult<Option<OwnedFd>> {
        let mut current: Option<OwnedFd> = None;
        for (i, part) in parts.iter().enumerate() {
            let at: BorrowedFd<'_> = match &current {
                Some(fd) => fd.as_fd(),
                None => self.fd.as_fd(),
            };
            let here = || self.display_path(&parts[..=i]);
            let mut made = false;
            let fd = loop {
                match rfs::openat(at, part.as_str(), DIR_FLAGS, Mode::empty()) {
                    Ok(fd) => break fd,
                    Err(Errno::NOENT) if create && !made => {
                        match rfs::mkdirat(at, part.as_str(), Mode::from_raw_mode(0o755)) {
                            Ok(()) => {
                                if let Some(created) = created.as_deref_mut() {
                                    created.push(parts[..=i].join("/"));
                                }
                                let _ = rfs::fsync(at);
                            }
                            Err(Errno::EXIST) => {}
                            Err(e) => return Err(FsError::Io(here(), e.into())),
                        }
                        made = true;
                    }
                    Err(Errno::NOENT) => return Ok(None),
                    Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
                        return Err(match kind_at(at, part) {
                            Ok(Some(Kind::Symlink)) => FsError::Symlink(here()),
                            Ok(Some(_)) => FsError::NotDir(here()),
                            _ => FsError::Io(here(), e.into()),
                        });
                    }
                    Err(e) => return Err(FsError::Io(here(), e.into())),
                }
            };
            current = Some(fd);
        }
        match current {
            Some(fd) => Ok(Some(fd)),
            None => rfs::openat(&self.fd, ".", DIR_FLAGS, Mode::empty())
                .map(Some)
                .map_err(|e| FsError::Io(self.path.clone(), e.into())),
        }
    }

    /// What is at `rel` (without following a link); `None` when nothing is.
    pub fn kind(&self, rel: &RelPath) -> FsResult<Option<Kind>> {
        let Some(dir) = self.open_dir(rel.dir_parts(), false, None)? else {
            return Ok(None);
        };
        kind_at(dir.as_fd(), rel.file_name())
            .map_err(|e| FsError::Io(rel.under(&self.path), e.into()))
    }

    /// The bytes of the regular file at `rel`; `None` when nothing is there.
    pub fn read(&self, rel: &RelPath) -> FsResult<Option<Vec<u8>>> {
        let full = rel.under(&self.path);
        let Some(dir) = self.open_dir(rel.dir_parts(), false, None)? else {
            return Ok(None);
        };
        let name = rel.file_name();
        match kind_at(dir.as_fd(), name).map_err(|e| FsError::Io(full.clone(), e.into()))? {
            None => return Ok(None),
            Some(Kind::File) => {}
            Some(Kind::Symlink) => return Err(FsError::Symlink(full)),
            Some(Kind::Dir) => return Err(FsError::NotFile(full, "directory")),
            Some(Kind::Other(kind)) => return Err(FsError::NotFile(full, kind)),
        }
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rfs::openat(&dir, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => return Err(FsError::Symlink(full)),
            Err(e) => return Err(FsError::Io(full, e.into())),
        };
        let mut file = regular_file(fd, &full)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| FsError::Io(full, e))?;
        Ok(Some(bytes))
    }

    /// Writes `bytes` to `rel` atomically with permissions `mode`, creating the directories on
    /// the way (their keys are added to `created`). Refuses to replace anything but a regular
    /// file.
    pub fn write_atomic(
        &self,
        rel: &RelPath,
        bytes: &[u8],
        mode: u32,
        created: &mut Vec<String>,
    ) -> FsResult<()> {
        self.write_atomic_with(rel, mode, created, |file| file.write_all(bytes))
    }

    /// Like [`Root::write_atomic`], with the content written by `write` into the temporary
    /// file (so a large document can be streamed into it). When `write` fails, the temporary
    /// file is removed and the file at `rel` is left as it was.
    pub fn write_atomic_with(
        &self,
        rel: &RelPath,
        mode: u32,
        created: &mut Vec<String>,
        write: impl FnOnce(&mut fs::File) -> io::Result<()>,
    ) -> FsResult<()> {
        let full = rel.under(&self.path);
        let dir = self
            .open_dir(rel.dir_parts(), true, Some(created))?
            .ok_or_else(|| FsError::Io(full.clone(), io::ErrorKind::NotFound.into()))?;
        let name = rel.file_name();
        check_replaceable(dir.as_fd(), name, &full)?;
        let tmp_name = format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let tmp_path = full.with_file_name(&tmp_name);
        let written = (|| -> FsResult<()> {
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = rfs::openat(&dir, tmp_name.as_str(), flags, Mode::from_raw_mode(mode))
                .map_err(|e| FsError::Io(tmp_path.clone(), e.into()))?;
            // The umask may have narrowed the mode; a public file must stay readable by Mage.
            rfs::fchmod(&fd, Mode::from_raw_mode(mode))
                .map_err(|e| FsError::Io(tmp_path.clone(), e.into()))?;
            let mut file = fs::File::from(fd);
            write(&mut file)
                .and_then(|()| file.sync_all())
                .map_err(|e| FsError::Io(tmp_path.clone(), e))?;
            rfs::renameat(&dir, tmp_name.as_str(), &dir, name)
                .map_err(|e| FsError::Io(full.clone(), e.into()))
        })();
        if written.is_err() {
            let _ = rfs::unlinkat(&dir, tmp_name.as_str(), AtFlags::empty());
        }
        written?;
        let _ = rfs::fsync(&dir);
        Ok(())
    }

    /// Opens the regular file at `rel` for reading and writing, without truncating it and
    /// never through a link (e.g. a file to take an OS lock on). When nothing is there: created
    /// with `mode` (and the directories on the way) if `create` is set, else `None`.
    pub fn open_rw(&self, rel: &RelPath, mode: u32, create: bool) -> FsResult<Option<fs::File>> {
        let full = rel.under(&self.path);
        let Some(dir) = self.open_dir(rel.dir_parts(), create, None)? else {
            return Ok(None);
        };
        let name = rel.file_name();
        check_replaceable(dir.as_fd(), name, &full)?;
        let mut flags =
            OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        if create {
            flags |= OFlags::CREATE;
        }
        let fd = match rfs::openat(&dir, name, flags, Mode::from_raw_mode(mode)) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if !create => return Ok(None),
            Err(Errno::LOOP) => return Err(FsError::Symlink(full)),
            Err(e) => return Err(FsError::Io(full, e.into())),
        };
        let file = regular_file(fd, &full)?;
        if create {
            let _ = rfs::fsync(&dir);
        }
        Ok(Some(file))
    }

    /// Opens `rel` for appending (created with `mode` when missing), never through a link and
    /// only if it is a regular file.
    pub fn open_append(&self, rel: &RelPath, mode: u32) -> FsResult<fs::File> {
        let full = rel.under(&self.path);
        let dir = self
            .open_dir(rel.dir_parts(), true, None)?
            .ok_or_else(|| FsError::Io(full.clone(), io::ErrorKind::NotFound.into()))?;
        let name = rel.file_name();
        check_replaceable(dir.as_fd(), name, &full)?;
        let flags = OFlags::WRONLY
            | OFlags::APPEND
            | OFlags::CREATE
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::NOCTTY
            | OFlags::CLOEXEC;
        let fd = match rfs::openat(&dir, name, flags, Mode::from_raw_mode(mode)) {
            Ok(fd) => fd,
            Err(Errno::LOOP) => return Err(FsError::Symlink(full)),
            Err(e) => return Err(FsError::Io(full, e.into())),
        };
        let file = regular_file(fd, &full)?;
        let _ = rfs::fsync(&dir);
        Ok(file)
    }

    /// Removes the file (or link, never what it points to) at `rel`; nothing there is fine.
    /// Refuses to remove a directory.
    pub fn remove_file(&self, rel: &RelPath) -> FsResult<()> {
        let full = rel.under(&self.path);
        let Some(dir) = self.open_dir(rel.dir_parts(), false, None)? else {
            return Ok(());
        };
        let name = rel.file_name();
        match kind_at(dir.as_fd(), name).map_err(|e| FsError::Io(full.clone(), e.into()))? {
            None => return Ok(()),
            Some(Kind::Dir) => return Err(FsError::NotFile(full, "directory")),
            Some(_) => {}
        }
        match rfs::unlinkat(&dir, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(FsError::Io(full, e.into())),
        }
        let _ = rfs::fsync(&dir);
        Ok(())
    }

    /// Removes the directory `key` (`a/b`) if it is empty (and a directory, not a link).
    /// Returns whether it is gone.
    pub fn remove_empty_dir(&self, key: &str) -> bool {
        let parts: Vec<String> = key.split('/').map(str::to_string).collect();
        let Some((name, parents)) = parts.split_last() else {
            return false;
        };
        match self.open_dir(parents, false, None) {
            Ok(Some(dir)) => match rfs::unlinkat(&dir, name.as_str(), AtFlags::REMOVEDIR) {
                Ok(()) => {
                    let _ = rfs::fsync(&dir);
                    true
                }
                Err(Errno::NOENT) => true,
                Err(_) => false,
            },
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Fsyncs the project directory itself.
    pub fn sync(&self) {
        let _ = rfs::fsync(&self.fd);
    }

    /// Removes weir's temporary files (regular files named `.weir-tmp-*`, never links) left
    /// in the directories `keys` (`""` is the project directory) by a run that was killed
    /// between writing one and renaming it. Directories that are missing or are links are
    /// skipped. Returns the paths removed.
    pub fn remove_stale_temps<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> FsResult<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for key in keys {
            let parts: Vec<String> = if key.is_empty() {
                Vec::new()
            } else {
                key.split('/').map(str::to_string).collect()
            };
            let dir = match self.open_dir(&parts, false, None) {
                Ok(Some(dir)) => dir,
                Ok(None) | Err(FsError::Symlink(_) | FsError::NotDir(_)) => continue,
                Err(e) => return Err(e),
            };
            let here = self.display_path(&parts);
            let entries =
                rfs::Dir::read_from(&dir).map_err(|e| FsError::Io(here.clone(), e.into()))?;
            let mut temps = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| FsError::Io(here.clone(), e.into()))?;
                if let Ok(name) = entry.file_name().to_str()
                    && name.starts_with(TEMP_PREFIX)
                {
                    temps.push(name.to_string());
                }
            }
            for name in temps {
                if kind_at(dir.as_fd(), &name) == Ok(Some(Kind::File)) {
                    match rfs::unlinkat(&dir, name.as_str(), AtFlags::empty()) {
                        Ok(()) => removed.push(here.join(&name)),
                        Err(Errno::NOENT) => {}
                        Err(e) => return Err(FsError::Io(here.join(&name), e.into())),
                    }
                }
            }
            if !removed.is_empty() {
                let _ = rfs::fsync(&dir);
            }
        }
        Ok(removed)
    }
}

/// What is at `name` in `dir`, without following a link.
fn kind_at(dir: BorrowedFd<'_>, name: &str) -> Result<Option<Kind>, Errno> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            other => Kind::Other(kind_name(other)),
        })),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Refuses anything but a regular file (or nothing) at `name`.
fn check_replaceable(dir: BorrowedFd<'_>, name: &str, full: &Path) -> FsResult<()> {
    match kind_at(dir, name).map_err(|e| FsError::Io(full.to_path_buf(), e.into()))? {
        None | Some(Kind::File) => Ok(()),
        Some(Kind::Symlink) => Err(FsError::Symlink(full.to_path_buf())),
        Some(Kind::Dir) => Err(FsError::NotFile(full.to_path_buf(), "directory")),
        Some(Kind::Other(kind)) => Err(FsError::NotFile(full.to_path_buf(), kind)),
    }
}

/// The open descriptor as a file, if it is a regular file (checked on the descriptor itself,
/// so nothing swapped in after a check is used).
fn regular_file(fd: OwnedFd, full: &Path) -> FsResult<fs::File> {
    let stat = rfs::fstat(&fd).map_err(|e| FsError::Io(full.to_path_buf(), e.into()))?;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => Ok(fs::File::from(fd)),
        other => Err(FsError::NotFile(full.to_path_buf(), kind_name(other))),
    }
}

/// A path below a [`Root`], made only of normal components and written with `/` (the key a
/// Mage project's manifest uses), e.g. `pipelines/orders/metadata.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelPath {
    parts: Vec<String>,
}

impl RelPath {
    /// Parses a relative path; refuses absolute paths, `..`, empty paths, backslashes and
    /// non-UTF-8 (`.` components are dropped).
    pub fn parse(raw: &str) -> Result<RelPath, String> {
        if raw.is_empty() {
            return Err("the path is empty".to_string());
        }
        if raw.contains('\\') {
            return Err(format!(
                "`{raw}` contains a backslash; use `/` between folders"
            ));
        }
        let mut parts = Vec::new();
        for component in Path::new(raw).components() {
            match component {
                Component::Normal(part) => match part.to_str() {
                    Some(part) => parts.push(part.to_string()),
                    None => return Err(format!("`{raw}` is not valid UTF-8")),
                },
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(format!("`{raw}` leaves its directory (`..`)"));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(format!("`{raw}` is absolute; it must be relative"));
                }
            }
        }
        if parts.is_empty() {
            return Err(format!("`{raw}` names no file"));
        }
        Ok(RelPath { parts })
    }

    /// `segments` joined with `/`; each must be a single normal path component.
    pub fn from_segments(segments: &[&str]) -> Result<RelPath, String> {
        for segment in segments {
            if segment.is_empty()
                || *segment == "."
                || *segment == ".."
                || segment.contains('/')
                || segment.contains('\\')
            {
                return Err(format!(
                    "`{segment}` cannot be used as a folder or file name (it must be one non-empty path component)"
                ));
            }
        }
        RelPath::parse(&segments.join("/"))
    }

    /// The manifest key: the components joined with `/`.
    pub fn key(&self) -> String {
        self.parts.join("/")
    }

    /// A key (`pipelines/orders`, components joined with `/`, as [`RelPath::key`] makes) as a
    /// path.
    pub fn from_key(key: &str) -> RelPath {
        RelPath {
            parts: key.split('/').map(str::to_string).collect(),
        }
    }

    /// The folders of the path, outermost first.
    pub fn dir_parts(&self) -> &[String] {
        &self.parts[..self.parts.len().saturating_sub(1)]
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.parts.last().map(String::as_str).unwrap_or_default()
    }

    /// The path under `root` (for messages).
    pub fn under(&self, root: &Path) -> PathBuf {
        let mut path = root.to_path_buf();
        for part in &self.parts {
            path.push(part);
        }
        path
    }

    /// The keys of the directories that contain this path, outermost first
    /// (`pipelines`, `pipelines/orders` for `pipelines/orders/metadata.yaml`).
    pub fn ancestor_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut key = String::new();
        for part in self.parts.iter().take(self.parts.len().saturating_sub(1)) {
            if !key.is_empty() {
                key.push('/');
            }
            key.push_str(part);
            keys.push(key.clone());
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_paths() {
        let p = RelPath::parse("data_loaders/load.py").map_err(|e| e.to_string());
        assert_eq!(
            p.as_ref().map(RelPath::key),
            Ok("data_loaders/load.py".to_string())
        );
        assert_eq!(
            RelPath::parse("./pipelines/orders/metadata.yaml")
                .map(|p| p.ancestor_keys())
                .ok(),
            Some(vec![
                "pipelines".to_string(),
                "pipelines/orders".to_string()
            ])
        );
        assert!(RelPath::parse("../etc/passwd").is_err());
        assert!(RelPath::parse("/etc/passwd").is_err());
        assert!(RelPath::parse("").is_err());
        assert!(RelPath::parse(".").is_err());
        assert!(RelPath::parse("a\\b").is_err());
        assert!(RelPath::from_segments(&["pipelines", "a/b", "x"]).is_err());
        assert!(RelPath::from_segments(&["pipelines", "..", "x"]).is_err());
    }
}
