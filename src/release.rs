//! Code releases of a `gcp` deployment in its bucket: the rendered Mage project, stored so that
//! a container or VM fetches one consistent version of it and an apply can point back.
//!
//! - `<prefix>/objects/<sha256>`: each file's content, named by its hash, created with
//!   `ifGenerationMatch=0` (an object that is already there is left alone, so uploading it
//!   again is a no-op);
//! - `<prefix>/releases/<id>.json`: a release's manifest, `{path → {sha256, size}}`;
//! - `<prefix>/current`: the pointer, `{"release": "<id>"}`, switched last with compare-and-swap
//!   on its generation, so a reader sees the old release or the new one, never half of one.
//!
//! Reading what is deployed reads the pointer and one manifest, never one object per file.
//! Release ids start with the time they were made (UTC, to the millisecond), so they sort in
//! the order they were published.

mod provider;

pub use provider::{NAME as PROVIDER_NAME, ReleaseProvider, TYPE};

use crate::state::StateError;
use crate::state::gcs::{Client, Put};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// How many releases are kept when the configuration does not say.
pub const DEFAULT_KEEP: usize = 10;

/// One file of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub sha256: String,
    pub size: u64,
}

/// A release: its id and its files by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub files: BTreeMap<String, FileEntry>,
}

/// The manifest of `files` (path → content), without an id.
pub fn entries(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, FileEntry> {
    files
        .iter()
        .map(|(path, bytes)| {
            let entry = FileEntry {
                sha256: hex(&Sha256::digest(bytes)),
                size: bytes.len() as u64,
            };
            (path.clone(), entry)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The release the pointer names now.
    pub release: String,
    /// The previous one, if any.
    pub previous: Option<String>,
    /// How many file objects were uploaded (0 when nothing changed).
    pub uploaded: usize,
    /// Releases removed because more than the number to keep were there.
    pub pruned: Vec<String>,
}

/// The releases of one deployment in its bucket.
pub struct ReleaseStore {
    client: Client,
    prefix: String,
}

#[derive(Serialize, Deserialize)]
struct Pointer {
    release: String,
}

impl ReleaseStore {
    /// The releases under `prefix` in `bucket`, reading the environment through `env`
    /// (`STORAGE_EMULATOR_HOST`, Application Default Credentials). Nothing is sent yet.
    pub fn open(
        bucket: &str,
        prefix: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ReleaseStore, String> {
        Ok(ReleaseStore {
            client: Client::open(bucket, env)?,
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// The releases under `prefix` in `bucket`, with these credentials and endpoints (a
    /// provider's configuration).
    pub fn with_access(
        bucket: &str,
        prefix: &str,
        credentials: weir_provider_sdk::CredentialsSource,
        endpoints: weir_provider_sdk::Endpoints,
    ) -> Result<ReleaseStore, String> {
        Ok(ReleaseStore {
            client: Client::with_access(bucket, credentials, endpoints)?,
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// How many requests this store has sent.
    pub fn requests(&self) -> usize {
        self.client.requests()
    }

    fn name(&self, leaf: &str) -> String {
        match self.prefix.as_str() {
            "" => leaf.to_string(),
            p => format!("{p}/{leaf}"),
        }
    }

    fn pointer_name(&self) -> String {
        self.name("current")
    }

    fn manifest_name(&self, id: &str) -> String {
        self.name(&format!("releases/{id}.json"))
    }

    /// The name of the object holding the content whose hash is `sha256`.
    pub fn object_name(&self, sha256: &str) -> String {
        self.name(&format!("objects/{sha256}"))
    }

    fn corrupt(&self, name: &str, e: impl std::fmt::Display) -> StateError {
        self.client.failure(
            "read release",
            name,
            format!("not a release weir wrote ({e})"),
        )
    }

    /// The pointed release and the pointer's generation (0 when there is none): two reads.
    pub fn current(&self) -> Result<(Option<Manifest>, u64), StateError> {
        let name = self.pointer_name();
        let Some((bytes, generation)) = self.client.get(&name, "read release pointer")? else {
            return Ok((None, 0));
        };
        let pointer: Pointer =
            serde_json::from_slice(&bytes).map_err(|e| self.corrupt(&name, e))?;
        Ok((Some(self.manifest(&pointer.release)?), generation))
    }

    /// The manifest of release `id`.
    pub fn manifest(&self, id: &str) -> Result<Manifest, StateError> {
        valid_id(id).map_err(|e| self.client.failure("read release", id, e))?;
        let name = self.manifest_name(id);
        let Some((bytes, _)) = self.client.get(&name, "read release")? else {
            return Err(self.client.failure(
                "read release",
                &name,
                format!("there is no release `{id}`"),
            ));
        };
        serde_json::from_slice(&bytes).map_err(|e| self.corrupt(&name, e))
    }

    /// The ids of every release, oldest first.
    pub fn releases(&self) -> Result<Vec<String>, StateError> {
        let dir = self.name("releases/");
        let mut ids: Vec<String> = self
            .client
            .list(&dir, "list releases")?
            .into_iter()
            .filter_map(|(name, _)| {
                name.strip_prefix(&dir)?
                    .strip_suffix(".json")
                    .map(str::to_string)
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The content of one file of a release, checked against its hash.
    pub fn content(&self, entry: &FileEntry) -> Result<Vec<u8>, StateError> {
        let name = self.object_name(&entry.sha256);
        match self.client.get(&name, "read release file")? {
            Some((bytes, _)) if hex(&Sha256::digest(&bytes)) == entry.sha256 => Ok(bytes),
            Some(_) => Err(self.corrupt(&name, "its content does not match its hash")),
            None => {
                Err(self
                    .client
                    .failure("read release file", &name, "the object is missing".into()))
            }
        }
    }

    /// Every file of release `id`, by path.
    pub fn fetch(&self, id: &str) -> Result<BTreeMap<String, Vec<u8>>, StateError> {
        let manifest = self.manifest(id)?;
        manifest
            .files
            .iter()
            .map(|(path, entry)| Ok((path.clone(), self.content(entry)?)))
            .collect()
    }

    /// Makes `files` (path → content) the pointed release, keeping the last `keep` releases.
    /// Uploads only the contents the pointed release does not have; when the files are the
    /// pointed release's, uploads nothing and leaves the pointer alone.
    pub fn publish(
        &self,
        files: &BTreeMap<String, Vec<u8>>,
        keep: usize,
    ) -> Result<Published, StateError> {
        self.publish_manifest(&entries(files), files, keep)
    }

    /// Makes the release of `wanted` the pointed one, as [`ReleaseStore::publish`]; `content`
    /// holds at least the files whose hash is not in the bucket yet (a content it lacks must be
    /// there already, from an earlier release).
    pub fn publish_manifest(
        &self,
        wanted: &BTreeMap<String, FileEntry>,
        content: &BTreeMap<String, Vec<u8>>,
        keep: usize,
    ) -> Result<Published, StateError> {
        let (current, generation) = self.current()?;
        if let Some(current) = current.as_ref().filter(|c| c.files == *wanted) {
            return Ok(Published {
                release: current.id.clone(),
                previous: None,
                uploaded: 0,
                pruned: Vec::new(),
            });
        }
        let have: BTreeSet<&str> = current
            .iter()
            .flat_map(|c| c.files.values().map(|e| e.sha256.as_str()))
            .collect();
        let mut uploaded = 0;
        let mut sent = BTreeSet::new();
        for (path, entry) in wanted {
            if have.contains(entry.sha256.as_str()) || !sent.insert(entry.sha256.clone()) {
                continue;
            }
            let name = self.object_name(&entry.sha256);
            let Some(bytes) = content.get(path) else {
                // Planned against a release that had it: it must still be in the bucket.
                if self.client.get(&name, "read release file")?.is_none() {
                    return Err(self.client.failure(
                        "upload release file",
                        &name,
                        format!("the content of `{path}` is neither planned nor in the bucket; plan again"),
                    ));
                }
                continue;
            };
            if hex(&Sha256::digest(bytes)) != entry.sha256 {
                return Err(self.client.failure(
                    "upload release file",
                    &name,
                    format!("the content planned for `{path}` does not match its hash"),
                ));
            }
            // Already there (from an older release, or a retried request): the same bytes.
            self.client.put(&name, bytes, 0, "upload release file")?;
            uploaded += 1;
        }
        let manifest = Manifest {
            id: new_id(wanted),
            files: wanted.clone(),
        };
        let name = self.manifest_name(&manifest.id);
        let body = crate::state::gcs::json_body(&manifest, &name)?;
        if let Put::PreconditionFailed = self.client.put(&name, &body, 0, "write release")? {
            return Err(self.client.failure(
                "write release",
                &name,
                "a release with this id exists already".into(),
            ));
        }
        let previous = current.map(|c| c.id);
        self.point(&manifest.id, generation)?;
        let pruned = self.prune(keep, &manifest.id)?;
        Ok(Published {
            release: manifest.id,
            previous,
            uploaded,
            pruned,
        })
    }

    /// Deletes every release: the pointer first (a container starting now finds none rather
    /// than half of one), then the manifests and the objects.
    pub fn delete_all(&self) -> Result<(), StateError> {
        let pointer = self.pointer_name();
        if let Some((_, generation)) = self.client.get(&pointer, "read release pointer")? {
            self.client
                .delete(&pointer, generation, "delete release pointer")?;
        }
        for dir in ["releases/", "objects/"] {
            for (name, generation) in self.client.list(&self.name(dir), "list releases")? {
                self.client.delete(&name, generation, "delete release")?;
            }
        }
        Ok(())
    }

    /// Switches the pointer to `id` if its generation is still `generation`.
    fn point(&self, id: &str, generation: u64) -> Result<(), StateError> {
        let name = self.pointer_name();
        let pointer = Pointer {
            release: id.to_string(),
        };
        let body = crate::state::gcs::json_body(&pointer, &name)?;
        match self.client.put(&name, &body, generation, "switch release pointer")? {
            Put::Written(_) => Ok(()),
            Put::PreconditionFailed => Err(self.client.failure(
                "switch release pointer",
                &name,
                "someone else switched the release pointer since weir read it; run the command again".into(),
            )),
        }
    }

    /// The release a rollback to `to` (or, without it, to the release before the pointed one)
    /// would point at, and the pointed one.
    pub fn rollback_target(
        &self,
        to: Option<&str>,
    ) -> Result<(Manifest, Option<Manifest>, u64), StateError> {
        let (current, generation) = self.current()?;
        let target = match to {
            Some(id) => id.to_string(),
            None => {
                let ids = self.releases()?;
                let before = current
                    .as_ref()
                    .and_then(|c| ids.iter().rev().find(|id| **id < c.id));
                match before {
                    Some(id) => id.clone(),
                    None => {
                        return Err(self.client.failure(
                            "roll back",
                            &self.name("releases/"),
                            "there is no release before the current one".into(),
                        ));
                    }
                }
            }
        };
        Ok((self.manifest(&target)?, current, generation))
    }

    /// Points back at `target`, if the pointer is still at `generation` (as read by
    /// [`ReleaseStore::rollback_target`]).
    pub fn roll_back(&self, target: &Manifest, generation: u64) -> Result<(), StateError> {
        self.point(&target.id, generation)
    }

    /// Deletes the releases beyond the last `keep` (never `current`), then the objects no kept
    /// release names. Returns the ids removed.
    fn prune(&self, keep: usize, current: &str) -> Result<Vec<String>, StateError> {
        let ids = self.releases()?;
        let keep = keep.max(1);
        if ids.len() <= keep {
            return Ok(Vec::new());
        }
        let (old, kept) = ids.split_at(ids.len() - keep);
        let old: Vec<String> = old.iter().filter(|id| *id != current).cloned().collect();
        let mut referenced = BTreeSet::new();
        for id in kept.iter().chain(std::iter::once(&current.to_string())) {
            for entry in self.manifest(id)?.files.into_values() {
                referenced.insert(entry.sha256);
            }
        }
        let dir = self.name("releases/");
        for (name, generation) in self.client.list(&dir, "list releases")? {
            let id = name
                .strip_prefix(&dir)
                .and_then(|n| n.strip_suffix(".json"));
            if id.is_some_and(|id| old.iter().any(|o| o == id)) {
                self.client
                    .delete(&name, generation, "delete old release")?;
            }
        }
        let dir = self.name("objects/");
        for (name, generation) in self.client.list(&dir, "list release files")? {
            let hash = name.strip_prefix(&dir).unwrap_or_default();
            if !referenced.contains(hash) {
                self.client
                    .delete(&name, generation, "delete unreferenced release file")?;
            }
        }
        Ok(old)
    }
}

/// A release id: when it was made and the start of its manifest's hash.
fn new_id(files: &BTreeMap<String, FileEntry>) -> String {
    // Over each path and the hash of its content: the same files, the same digest.
    let mut hasher = Sha256::new();
    for (path, entry) in files {
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(entry.sha256.as_bytes());
        hasher.update([0]);
    }
    let digest = hex(&hasher.finalize());
    format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ"),
        &digest[..8]
    )
}

/// Refuses a release id that could name another object (`weir rollback ../state`).
pub fn valid_id(id: &str) -> Result<(), String> {
    if !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        && !id.starts_with('.')
    {
        Ok(())
    } else {
        Err(format!(
            "`{id}` is not a release id (ids look like `20261202T031500123Z-1a2b3c4d`; `weir rollback` without one goes back to the previous release)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_ids_that_could_name_another_object_are_refused() {
        assert!(valid_id("20261202T031500123Z-1a2b3c4d").is_ok());
        for bad in ["", "../state", "a/b", ".hidden", "x y"] {
            assert!(valid_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn new_ids_sort_in_time_order() {
        let files = entries(&BTreeMap::from([("a".to_string(), b"x".to_vec())]));
        let first = new_id(&files);
        std::thread::sleep(std::time::Duration::from_millis(3));
        assert!(new_id(&files) > first);
        assert!(valid_id(&first).is_ok());
    }
}
