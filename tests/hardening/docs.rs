//! Hardening tests: see `tests/hardening.rs`. `fmt` and what the docs promise.

use crate::cli;

/// `weir fmt` puts a blank line between two top-level blocks written one after the other, and
/// `fmt --check` reports a file that lacks one.
#[test]
fn fmt_separates_top_level_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("main.hcl");
    std::fs::write(
        &file,
        "locals {\n  a = 1\n}\npipeline \"p\" {\n  block \"b\" {\n    type = \"custom\"\n    code = \"x = 1\"\n  }\n}\n",
    )
    .unwrap();
    let check = cli::weir(tmp.path())
        .args(["fmt", "--check"])
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(1),
        "fmt --check must report the file"
    );
    let out = cli::weir(tmp.path()).arg("fmt").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let formatted = std::fs::read_to_string(&file).unwrap();
    assert!(
        formatted.contains("}\n\npipeline \"p\" {"),
        "no blank line between the blocks:\n{formatted}"
    );
    // Inside a block, blocks stay as written.
    assert!(formatted.contains("{\n  block \"b\" {"), "{formatted}");
}

/// The repository stands alone: no document or code comment points at design files outside it
/// or at a path of the machine it was written on.
#[test]
fn repository_is_self_contained() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut offenders = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "mage_project" {
                    stack.push(path);
                }
                continue;
            }
            let wanted = [".rs", ".md", ".sh", ".py", ".toml", ".hcl"];
            if !kind.is_file() || !wanted.iter().any(|ext| name.ends_with(ext)) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                // Spelled in pieces so that this test does not find itself.
                let needles = [
                    ["../", "shared"].concat(),
                    ["/work", "/"].concat(),
                    ["DESIGN", ".md"].concat(),
                    ["LANGUAGE", ".md"].concat(),
                    ["planners", ".md"].concat(),
                    ["mage", ".md §"].concat(),
                    // `docs/gcp.md` is the repository's own; the research notes are not.
                    ["reference/gcp", ".md"].concat(),
                    ["gcp", ".md §"].concat(),
                    ["crates", ".md"].concat(),
                ];
                if needles.iter().any(|needle| line.contains(needle.as_str())) {
                    offenders.push(format!("{}:{}: {line}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "these lines point outside the repository:\n{}",
        offenders.join("\n")
    );
}
