//! The whole `gcp` architecture on one machine, with real parts only: the real mage-ai 0.9.80,
//! a real PostgreSQL standing in for Cloud SQL, `fake-gcs-server` behind the sandbox's storage
//! front, the sandbox with processes on (the scheduler VM's container and each profile job's
//! execution run as local processes), and the `weir` binary.

#[path = "support/gcp.rs"]
mod gcp;
#[path = "support/mage.rs"]
mod mage;
#[path = "support/postgres.rs"]
mod postgres;

use std::process::Command;

use postgres::Postgres;

/// The Python of the mage venv (it has psycopg2, as the Mage image does).
fn mage_python() -> std::path::PathBuf {
    mage::mage_bin().with_file_name("python")
}

#[test]
fn postgres_serves_a_database_on_its_unix_socket_only() {
    let dir = tempfile::tempdir().unwrap();
    let sockets = dir.path().join("acme:us-central1:db");
    let db = Postgres::start(&sockets, 5432, &[("mage", "mage")]);
    assert!(sockets.join(".s.PGSQL.5432").exists());
    let url = format!("postgresql://mage@/mage?host={}", sockets.display());
    let check = "import sys, psycopg2\n\
                 c = psycopg2.connect(sys.argv[1])\n\
                 cur = c.cursor()\n\
                 cur.execute('select current_user, current_database(), inet_server_port()')\n\
                 print(cur.fetchone())";
    let out = Command::new(mage_python())
        .args(["-c", check, &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n--- server log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        db.log()
    );
    // No TCP: the server has no port of its own.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "('mage', 'mage', None)"
    );
    let socket = sockets.join(".s.PGSQL.5432");
    drop(db);
    assert!(!socket.exists(), "the server still runs after drop");
}
