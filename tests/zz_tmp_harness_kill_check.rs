// TEMPORARY (harness self-check; will be deleted)
#[path = "support/mage.rs"]
mod mage;
#[test]
fn tmp_panic_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let project = mage::copy_project(&mage::fixture("mage_handmade"), tmp.path());
    let _server = mage::MageServer::start(&project, &tmp.path().join("d"));
    eprintln!("server up");
    panic!("deliberate panic with a running server");
}
#[test]
fn tmp_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let project = mage::copy_project(&mage::fixture("mage_handmade"), tmp.path());
    let _server = mage::MageServer::start(&project, &tmp.path().join("d"));
    eprintln!("server up; sleeping");
    std::thread::sleep(std::time::Duration::from_secs(600));
}
#[test]
fn tmp_orphan_cleanup() {
    mage::kill_orphaned_mage_processes();
}
