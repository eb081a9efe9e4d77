//! The Mage provider never writes, reads or deletes outside what it owns: links inside the
//! project, FIFOs, the project directory itself, projects owned by another weir state,
//! leftovers of a killed run, a damaged journal, files that hold secrets. Each test failed
//! before the provider was hardened.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use weir_provider_mage::MageProvider;
use weir_provider_sdk::{Provider, ProviderError, ResourceRef};

/// A configuration directory with its provider, and a directory outside the project that
/// links may point to.
struct Setup {
    tmp: TempDir,
    provider: MageProvider,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        fs::create_dir_all(tmp.path().join("config"))
            .unwrap_or_else(|e| panic!("mkdir config: {e}"));
        fs::create_dir_all(tmp.path().join("outside"))
            .unwrap_or_else(|e| panic!("mkdir outside: {e}"));
        let provider = MageProvider::new(tmp.path().join("config"));
        Setup { tmp, provider }
    }

    /// Another provider (another run of weir) on the same configuration directory.
    fn provider(&self, lineage: Option<&str>) -> MageProvider {
        let provider = MageProvider::new(self.tmp.path().join("config"));
        provider.set_state_lineage(lineage);
        provider
    }

    fn project(&self, rel: &str) -> PathBuf {
        self.tmp.path().join("config/mage_project").join(rel)
    }

    /// The project directory (without a trailing slash, as errors name it).
    fn root(&self) -> PathBuf {
        self.tmp.path().join("config/mage_project")
    }

    fn outside(&self, rel: &str) -> PathBuf {
        self.tmp.path().join("outside").join(rel)
    }
}

fn resource(address: &str, type_name: &str, attributes: Value) -> ResourceRef {
    ResourceRef {
        address: address.to_string(),
        type_name: type_name.to_string(),
        attributes,
        sensitive_paths: Vec::new(),
    }
}

fn block(path: &str, code: &str) -> ResourceRef {
    resource(
        "mage_block.load",
        "mage_block",
        json!({"project_dir": "mage_project", "path": path, "code": code}),
    )
}

fn pipeline(notification: Value) -> ResourceRef {
    resource(
        "mage_pipeline.orders",
        "mage_pipeline",
        json!({
            "project_dir": "mage_project", "uuid": "orders", "name": "orders",
            "description": "", "tags": [], "variables": {}, "concurrency_config": null,
            "notification_config": notification,
            "blocks": [{"uuid": "load", "type": "data_loader", "language": "python",
                        "upstream_blocks": [], "downstream_blocks": [],
                        "configuration": {"dynamic": false, "reduce_output": false},
                        "retry_config": null, "timeout": null}],
            "conditionals": [], "callbacks": []
        }),
    )
}

fn triggers() -> ResourceRef {
    resource(
        "mage_triggers.orders",
        "mage_triggers",
        json!({"project_dir": "mage_project", "pipeline": "orders", "retired": [], "triggers": [{
            "name": "on_demand", "schedule_type": "api", "schedule_interval": null,
            "start_time": null, "status": "active", "variables": {}, "sla": null,
            "settings": {"skip_if_previous_running": false, "allow_blocks_to_fail": false,
                         "timeout": null, "pipeline_run_limit": null},
            "description": null, "token": null, "last_enabled_at": null}]}),
    )
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
    }
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn link(target: &Path, at: &Path) {
    if let Some(parent) = at.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
    }
    if at.is_dir() && !at.is_symlink() {
        fs::remove_dir_all(at).unwrap_or_else(|e| panic!("rm {}: {e}", at.display()));
    } else if at.symlink_metadata().is_ok() {
        fs::remove_file(at).unwrap_or_else(|e| panic!("rm {}: {e}", at.display()));
    }
    symlink(target, at).unwrap_or_else(|e| panic!("symlink {}: {e}", at.display()));
}

async fn create(provider: &MageProvider, r: &ResourceRef) -> Value {
    provider
        .create(r, &weir_provider_sdk::Cancel::new())
        .await
        .unwrap_or_else(|e| panic!("create of {} failed: {e}", r.address))
}

/// The error, which must name `path`.
fn refused<T: std::fmt::Debug>(result: Result<T, ProviderError>, path: &Path) -> String {
    let message = match result {
        Ok(value) => panic!("expected an error naming {}, got {value:?}", path.display()),
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains(&path.display().to_string()),
        "the error should name {}: {message}",
        path.display()
    );
    message
}

async fn read_result(
    provider: &MageProvider,
    r: &ResourceRef,
) -> Result<Option<Value>, ProviderError> {
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        provider.read(std::slice::from_ref(r)),
    )
    .await
    .unwrap_or_else(|_| panic!("reading {} hangs", r.address));
    read.into_iter()
        .next()
        .unwrap_or_else(|| panic!("no read result"))
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn symlinked_pipeline_folder_is_refused_on_update_and_delete() {
    let s = Setup::new();
    let r = pipeline(Value::Null);
    create(&s.provider, &r).await;
    // The pipeline folder is replaced by a link to a folder outside the project.
    write(&s.outside("orders/metadata.yaml"), "not weir's\n");
    link(&s.outside("orders"), &s.project("pipelines/orders"));

    let p = s.provider(None);
    let folder = s.project("pipelines/orders");
    let message = refused(
        p.update(&r.attributes, &r, &weir_provider_sdk::Cancel::new())
            .await,
        &folder,
    );
    assert!(message.contains("symbolic link"), "{message}");
    refused(
        p.delete(&r, &weir_provider_sdk::Cancel::new()).await,
        &folder,
    );
    refused(read_result(&p, &r).await, &folder);
    assert_eq!(read(&s.outside("orders/metadata.yaml")), "not weir's\n");
}

#[tokio::test]
async fn symlinked_pipelines_folder_is_refused() {
    let s = Setup::new();
    let r = pipeline(Value::Null);
    create(&s.provider, &r).await;
    write(&s.outside("pipes/orders/metadata.yaml"), "not weir's\n");
    link(&s.outside("pipes"), &s.project("pipelines"));

    let p = s.provider(None);
    refused(
        p.update(&r.attributes, &r, &weir_provider_sdk::Cancel::new())
            .await,
        &s.project("pipelines"),
    );
    refused(
        p.delete(&r, &weir_provider_sdk::Cancel::new()).await,
        &s.project("pipelines"),
    );
    assert_eq!(
        read(&s.outside("pipes/orders/metadata.yaml")),
        "not weir's\n"
    );
}

#[tokio::test]
async fn symlinked_block_file_is_not_read_or_written() {
    let s = Setup::new();
    let r = block("data_loaders/load.py", "x = 1\n");
    create(&s.provider, &r).await;
    write(&s.outside("secret.txt"), "password\n");
    link(&s.outside("secret.txt"), &s.project("data_loaders/load.py"));

    let p = s.provider(None);
    let file = s.project("data_loaders/load.py");
    let message = refused(read_result(&p, &r).await, &file);
    assert!(!message.contains("password"), "{message}");
    refused(
        p.update(&r.attributes, &r, &weir_provider_sdk::Cancel::new())
            .await,
        &file,
    );
    assert_eq!(read(&s.outside("secret.txt")), "password\n");
}

#[tokio::test]
async fn symlinked_weir_folder_and_journal_are_not_followed() {
    let s = Setup::new();
    create(&s.provider, &block("data_loaders/a.py", "a\n")).await;
    let journal = s.project(".weir/manifest.journal");
    let folded = s.provider(None);
    // Folds the journal into manifest.json, so that the next claim opens a new journal.
    create(&folded, &block("data_loaders/a.py", "a\n")).await;
    assert!(!journal.exists());

    // A journal linked to a file outside: never truncated, appended to or followed.
    write(&s.outside("precious"), "keep me\n");
    link(&s.outside("precious"), &journal);
    let p = s.provider(None);
    refused(
        p.create(
            &block("data_loaders/b.py", "b\n"),
            &weir_provider_sdk::Cancel::new(),
        )
        .await,
        &journal,
    );
    assert_eq!(read(&s.outside("precious")), "keep me\n");
    assert!(!s.project("data_loaders/b.py").exists());

    // The whole `.weir/` folder linked outside.
    fs::remove_file(&journal).unwrap_or_else(|e| panic!("rm journal: {e}"));
    fs::rename(s.project(".weir"), s.outside("weir")).unwrap_or_else(|e| panic!("mv .weir: {e}"));
    link(&s.outside("weir"), &s.project(".weir"));
    let p = s.provider(None);
    refused(
        p.create(
            &block("data_loaders/b.py", "b\n"),
            &weir_provider_sdk::Cancel::new(),
        )
        .await,
        &s.project(".weir"),
    );
    assert!(!s.project("data_loaders/b.py").exists());
}

#[tokio::test]
async fn symlinked_manifest_is_not_read() {
    let s = Setup::new();
    write(
        &s.outside("manifest.json"),
        r#"{"version": 1, "files": {"data_loaders/load.py": {"sha256": "00", "owner": "mage_block.load"}}}"#,
    );
    write(&s.project("data_loaders/load.py"), "# the user's\n");
    link(
        &s.outside("manifest.json"),
        &s.project(".weir/manifest.json"),
    );
    refused(
        s.provider
            .create(
                &block("data_loaders/load.py", "x\n"),
                &weir_provider_sdk::Cancel::new(),
            )
            .await,
        &s.project(".weir/manifest.json"),
    );
    assert_eq!(read(&s.project("data_loaders/load.py")), "# the user's\n");
}

#[tokio::test]
async fn symlinked_project_dir_is_refused() {
    let s = Setup::new();
    link(&s.outside(""), &s.tmp.path().join("config/mage_project"));
    let r = block("data_loaders/load.py", "x\n");
    let root = s.tmp.path().join("config/mage_project");
    refused(
        s.provider
            .create(&r, &weir_provider_sdk::Cancel::new())
            .await,
        &root,
    );
    refused(
        s.provider.plan(&r.type_name, None, r.attributes.clone()),
        &root,
    );
    assert!(!s.outside("data_loaders").exists());
}

#[tokio::test]
async fn project_dir_that_is_the_configuration_directory_is_refused() {
    let s = Setup::new();
    for dir in ["./", ".", "..", "sub/../"] {
        let r = resource(
            "mage_block.load",
            "mage_block",
            json!({"project_dir": dir, "path": "data_loaders/load.py", "code": "x\n"}),
        );
        let err = s
            .provider
            .plan(&r.type_name, None, r.attributes.clone())
            .err()
            .unwrap_or_else(|| panic!("project_dir `{dir}` was accepted"));
        assert!(err.message.contains("directory of its own"), "{err}");
        assert!(
            s.provider
                .create(&r, &weir_provider_sdk::Cancel::new())
                .await
                .is_err()
        );
    }
    assert!(!s.tmp.path().join("config/data_loaders").exists());
}

/// Runs the scenario on a thread of its own: a hang fails the test instead of blocking it.
#[test]
fn fifo_where_a_file_is_expected_is_an_error_not_a_hang() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        runtime.block_on(fifo_scenario());
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(30)) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("a FIFO where a file is expected makes the provider hang")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("the FIFO scenario failed (its panic is above)")
        }
    }
}

async fn fifo_scenario() {
    let s = Setup::new();
    let r = block("data_loaders/load.py", "x\n");
    create(&s.provider, &r).await;
    let file = s.project("data_loaders/load.py");
    fs::remove_file(&file).unwrap_or_else(|e| panic!("rm: {e}"));
    mkfifo(&file);
    let p = s.provider(None);
    let message = refused(read_result(&p, &r).await, &file);
    assert!(message.contains("FIFO"), "{message}");
    refused(
        p.update(&r.attributes, &r, &weir_provider_sdk::Cancel::new())
            .await,
        &file,
    );

    // The journal as a FIFO: opening it for appending must not wait for a reader.
    let journal = s.project(".weir/manifest.journal");
    let _ = fs::remove_file(&journal);
    mkfifo(&journal);
    let p = s.provider(None);
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        p.create(
            &block("data_loaders/other.py", "y\n"),
            &weir_provider_sdk::Cancel::new(),
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("writing through a FIFO journal hangs"));
    refused(result, &journal);
}

#[tokio::test]
async fn stale_temp_files_are_removed_at_the_next_open() {
    let s = Setup::new();
    create(&s.provider, &pipeline(Value::Null)).await;
    create(&s.provider, &block("data_loaders/load.py", "x\n")).await;
    // What a kill -9 between writing a temp file and renaming it leaves behind.
    let stale = [
        s.project("pipelines/orders/.weir-tmp-a1b2c3"),
        s.project("data_loaders/.weir-tmp-d4e5f6"),
        s.project(".weir/.weir-tmp-g7h8i9"),
    ];
    for path in &stale {
        write(path, "full content\n");
    }
    // Not weir's to remove: a link with weir's prefix, another prefix, a directory.
    write(&s.outside("target"), "outside\n");
    link(
        &s.outside("target"),
        &s.project("data_loaders/.weir-tmp-link"),
    );
    write(&s.project("data_loaders/.tmp-other"), "the user's\n");
    fs::create_dir_all(s.project("data_loaders/.weir-tmp-dir"))
        .unwrap_or_else(|e| panic!("mkdir: {e}"));

    let p = s.provider(None);
    create(&p, &block("data_loaders/load.py", "y\n")).await;
    for path in &stale {
        assert!(!path.exists(), "{} was left behind", path.display());
    }
    assert!(s.project("data_loaders/.weir-tmp-link").is_symlink());
    assert_eq!(read(&s.outside("target")), "outside\n");
    assert!(s.project("data_loaders/.tmp-other").exists());
    assert!(s.project("data_loaders/.weir-tmp-dir").is_dir());
}

#[tokio::test]
async fn damaged_journal_is_an_error_naming_it() {
    let s = Setup::new();
    let r = block("data_loaders/load.py", "x\n");
    create(&s.provider, &r).await;
    let journal = s.project(".weir/manifest.journal");
    // A complete line (it ends with a newline) that is not a journal entry: damage, not a
    // torn append.
    let mut text = read(&journal);
    text.push_str("{\"op\":\"claim\",\"file\":garbage}\n");
    write(&journal, &text);
    let p = s.provider(None);
    let message = refused(
        p.delete(&r, &weir_provider_sdk::Cancel::new()).await,
        &journal,
    );
    assert!(message.contains("line 2"), "{message}");
    assert!(s.project("data_loaders/load.py").exists());
    refused(p.plan(&r.type_name, None, r.attributes.clone()), &journal);

    // A journal whose only line is garbage, even torn, is not an empty manifest either when
    // it ends with a newline.
    write(&journal, "garbage\n");
    refused(
        s.provider(None)
            .delete(&r, &weir_provider_sdk::Cancel::new())
            .await,
        &journal,
    );
}

#[tokio::test]
async fn torn_last_journal_line_is_tolerated() {
    let s = Setup::new();
    let r = block("data_loaders/load.py", "x\n");
    create(&s.provider, &r).await;
    let journal = s.project(".weir/manifest.journal");
    let mut text = read(&journal);
    text.push_str("{\"op\":\"claim\",\"file\":\"data_loaders/x.py\",\"ent");
    write(&journal, &text);
    s.provider(None)
        .delete(&r, &weir_provider_sdk::Cancel::new())
        .await
        .unwrap_or_else(|e| panic!("delete after a torn append: {e}"));
    assert!(!s.project("data_loaders/load.py").exists());
}

#[tokio::test]
async fn project_of_another_state_is_refused() {
    let s = Setup::new();
    let first = s.provider(Some("lineage-first"));
    let r = block("data_loaders/load.py", "first\n");
    create(&first, &r).await;
    create(&first, &pipeline(Value::Null)).await;

    // A second configuration, with its own state, pointed at the same project.
    for other in [s.provider(Some("lineage-second")), s.provider(None)] {
        let mine = block("data_loaders/load.py", "second\n");
        let message = refused(
            other.plan(&mine.type_name, None, mine.attributes.clone()),
            &s.root(),
        );
        assert!(message.contains("lineage-first"), "{message}");
        let other_file = block("data_loaders/other.py", "second\n");
        let message = refused(
            other
                .create(&other_file, &weir_provider_sdk::Cancel::new())
                .await,
            &s.root(),
        );
        assert!(message.contains("lineage-first"), "{message}");
        refused(
            other
                .update(&r.attributes, &mine, &weir_provider_sdk::Cancel::new())
                .await,
            &s.root(),
        );
        refused(
            other.delete(&r, &weir_provider_sdk::Cancel::new()).await,
            &s.root(),
        );
        refused(read_result(&other, &r).await, &s.root());
    }
    assert_eq!(read(&s.project("data_loaders/load.py")), "first\n");
    assert!(!s.project("data_loaders/other.py").exists());
    assert!(s.project("pipelines/orders/metadata.yaml").exists());

    // The owner still works, and once it deleted everything the project is free.
    let first = s.provider(Some("lineage-first"));
    first
        .delete(&r, &weir_provider_sdk::Cancel::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    first
        .delete(&pipeline(Value::Null), &weir_provider_sdk::Cancel::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    create(
        &s.provider(Some("lineage-second")),
        &block("data_loaders/load.py", "2\n"),
    )
    .await;
}

#[tokio::test]
async fn project_without_an_owner_is_claimed_by_the_first_state_that_writes() {
    let s = Setup::new();
    // A project written before ownership was recorded.
    create(&s.provider, &block("data_loaders/load.py", "x\n")).await;
    let owner = s.provider(Some("lineage-a"));
    create(&owner, &block("data_loaders/load.py", "y\n")).await;
    let r = block("data_loaders/load.py", "z\n");
    let message = refused(
        s.provider(Some("lineage-b"))
            .create(&r, &weir_provider_sdk::Cancel::new())
            .await,
        &s.root(),
    );
    assert!(message.contains("lineage-a"), "{message}");
    assert_eq!(read(&s.project("data_loaders/load.py")), "y\n");
}

#[tokio::test]
async fn existing_file_not_weirs_is_refused_at_plan() {
    let s = Setup::new();
    write(&s.project("data_loaders/load.py"), "# the user's\n");
    let r = block("data_loaders/load.py", "x\n");
    let message = refused(
        s.provider.plan(&r.type_name, None, r.attributes.clone()),
        &s.project("data_loaders/load.py"),
    );
    assert!(message.contains("does not own"), "{message}");
    // Nothing was written by planning.
    assert!(!s.project(".weir").exists());
}

#[tokio::test]
async fn files_holding_secrets_are_written_owner_only() {
    let s = Setup::new();
    let mut with_webhook = pipeline(json!({
        "alert_on": ["trigger_failure"],
        "slack_config": {"webhook_url": "https://hooks.slack.com/services/T/B/X"}
    }));
    with_webhook.sensitive_paths = vec![vec![
        "notification_config".into(),
        "slack_config".into(),
        "webhook_url".into(),
    ]];
    create(&s.provider, &with_webhook).await;
    let metadata = s.project("pipelines/orders/metadata.yaml");
    assert_eq!(mode(&metadata), 0o600);
    // No digest of it in the manifest (0644) either: it would allow checking a guessed
    // secret offline.
    let digest: String = Sha256::digest(fs::read(&metadata).unwrap_or_default())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let journal = read(&s.project(".weir/manifest.journal"));
    assert!(
        journal.contains("pipelines/orders/metadata.yaml"),
        "{journal}"
    );
    assert!(!journal.contains(&digest), "{journal}");

    // Trigger tokens are credentials: anyone holding one can start the pipeline.
    create(&s.provider, &triggers()).await;
    assert_eq!(mode(&s.project("pipelines/orders/triggers.yaml")), 0o600);

    // Without a secret the files stay readable by Mage running as another user.
    let plain = pipeline(Value::Null);
    s.provider
        .update(
            &with_webhook.attributes,
            &plain,
            &weir_provider_sdk::Cancel::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mode(&metadata), 0o644);
    create(&s.provider, &block("data_loaders/load.py", "x\n")).await;
    assert_eq!(mode(&s.project("data_loaders/load.py")), 0o644);

    // Sensitive variables.
    let mut with_variables = pipeline(Value::Null);
    with_variables.attributes["variables"] = json!({"api_key": "s3cr3t"});
    with_variables.sensitive_paths = vec![vec!["variables".into()]];
    s.provider
        .update(
            &plain.attributes,
            &with_variables,
            &weir_provider_sdk::Cancel::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mode(&metadata), 0o600);
}
