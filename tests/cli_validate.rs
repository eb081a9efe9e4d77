//! `weir validate` and `weir fmt --check` from the command line: exit codes, the
//! `FILE:LINE:COL:` text form, the `--json` form, where variable values come from (docs/language.md
//! §2, lowest precedence first: `default`, `WEIR_VAR_<name>`, `*.auto.tfvars` in name order,
//! `--var-file` in order, `--var` in order), and that sensitive values stay out of the output.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// `weir` with a clean environment for variables: no `WEIR_VAR_*` of the machine leaks in.
fn weir() -> Command {
    let mut cmd = Command::cargo_bin("weir").expect("the weir binary is built");
    for (key, _) in std::env::vars() {
        if key.starts_with("WEIR_VAR_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1").arg("--no-color");
    cmd
}

const LOCAL_DEPLOYMENT: &str = r#"deployment "dev" {
  target      = "local"
  project_dir = "mage_project"
  image       = "mageai/mageai:0.9.80"
}
"#;

fn config_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = tmp.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    tmp
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn examples_validate() {
    for name in ["quickstart", "local"] {
        let r = run(weir().arg("-C").arg(example(name)).arg("validate"));
        assert_eq!(
            r.code, 0,
            "validate {name} failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        assert!(
            r.stderr.contains("The configuration is valid"),
            "{name}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("error:"), "{name}: {}", r.stderr);
    }
}

#[test]
fn examples_validate_json_is_an_empty_array() {
    for name in ["quickstart", "local"] {
        let r = run(weir()
            .arg("-C")
            .arg(example(name))
            .args(["validate", "--json"]));
        assert_eq!(r.code, 0, "{name}: {}{}", r.stdout, r.stderr);
        let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        // Only the note that this build cannot apply the quickstart's `gcp` deployment.
        let mut items = json.as_array().unwrap().clone();
        items.retain(|d| {
            !d["message"]
                .as_str()
                .unwrap()
                .starts_with("this build of weir")
        });
        assert_eq!(items, Vec::<serde_json::Value>::new(), "{name}");
    }
}

#[test]
fn examples_are_formatted() {
    for name in ["quickstart", "local"] {
        let r = run(weir().arg("-C").arg(example(name)).args(["fmt", "--check"]));
        assert_eq!(r.code, 0, "fmt --check {name}:\n{}\n{}", r.stdout, r.stderr);
    }
}

fn broken() -> tempfile::TempDir {
    // Line 4, column 17: the value of `image`, which has the wrong type.
    config_dir(&[(
        "main.hcl",
        "deployment \"dev\" {\n  target      = \"local\"\n  project_dir = \"mage_project\"\n  image       = [\"mageai/mageai:0.9.80\"]\n}\n",
    )])
}

#[test]
fn broken_config_exits_1_with_file_line_col() {
    let tmp = broken();
    // From inside the directory, paths are shown relative to it.
    let r = run(weir().current_dir(tmp.path()).arg("validate"));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("main.hcl:4:17: error: `image` must be a string, got a list"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.lines().any(|l| l.starts_with("main.hcl:4:17:")));
    assert!(r.stderr.contains("1 error, 0 warnings"), "{}", r.stderr);

    // With -C, the path includes the directory.
    let r = run(weir().arg("-C").arg(tmp.path()).arg("validate"));
    assert_eq!(r.code, 1);
    let expected = format!("{}:4:17: error:", tmp.path().join("main.hcl").display());
    assert!(r.stderr.contains(&expected), "{}", r.stderr);
}

/// Under the `FILE:LINE:COL:` line comes the source line with the span underlined, then the
/// help, whatever the message says (this one has a comma).
#[test]
fn snippet_and_help_follow_the_header() {
    let tmp = broken();
    let r = run(weir().current_dir(tmp.path()).arg("validate"));
    assert_eq!(r.code, 1);
    let after = r
        .stderr
        .split_once("main.hcl:4:17: error: `image` must be a string, got a list\n")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no header:\n{}", r.stderr));
    assert!(
        after.contains("4 │   image       = [\"mageai/mageai:0.9.80\"]"),
        "no snippet under the header:\n{}",
        r.stderr
    );
}

#[test]
fn broken_config_json() {
    let tmp = broken();
    let r = run(weir().current_dir(tmp.path()).args(["validate", "--json"]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let json: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", r.stdout));
    let items = json.as_array().expect("a JSON array");
    assert_eq!(items.len(), 1, "{json:#}");
    let d = &items[0];
    for key in ["severity", "file", "line", "column", "message", "help"] {
        assert!(d.get(key).is_some(), "no `{key}` in {d:#}");
    }
    assert_eq!(d["severity"], "error");
    assert_eq!(d["file"], "main.hcl");
    assert_eq!(d["line"], 4);
    assert_eq!(d["column"], 17);
    assert_eq!(d["message"], "`image` must be a string, got a list");
}

#[test]
fn warnings_exit_0_and_are_in_json() {
    let tmp = config_dir(&[(
        "main.hcl",
        "deployment \"dev\" {\n  target       = \"local\"\n  project_dir  = \"mage_project\"\n  image        = \"mageai/mageai:latest\"\n  mage_version = \"0.9.80\"\n}\n",
    )]);
    let r = run(weir().current_dir(tmp.path()).arg("validate"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("main.hcl:4:18: warning:"), "{}", r.stderr);
    let r = run(weir().current_dir(tmp.path()).args(["validate", "--json"]));
    assert_eq!(r.code, 0);
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(json[0]["severity"], "warning");
    assert_eq!(json[0]["line"], 4);
}

#[test]
fn unknown_names_suggest_in_text_and_json() {
    let tmp = config_dir(&[(
        "main.hcl",
        &format!("{LOCAL_DEPLOYMENT}\npipline \"etl\" {{\n}}\n"),
    )]);
    let r = run(weir().current_dir(tmp.path()).arg("validate"));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("main.hcl:7:1: error: unknown block type `pipline`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("did you mean `pipeline`?"),
        "{}",
        r.stderr
    );
    let r = run(weir().current_dir(tmp.path()).args(["validate", "--json"]));
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(json[0]["help"], "did you mean `pipeline`?");
}

// ------------------------------------------------------------------ variable precedence

/// A configuration that is valid only when `var.source` is `expected`: the validation's
/// message says nothing about the value, its condition tells the sources apart.
fn precedence_dir(expected: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let main = format!(
        r#"{LOCAL_DEPLOYMENT}
variable "source" {{
  type    = string
  default = "default"

  validation {{
    condition     = var.source == "{expected}"
    error_message = "The value did not come from where it should have."
  }}
}}
"#
    );
    let mut files = vec![("main.hcl", main.as_str())];
    files.extend_from_slice(extra);
    config_dir(&files)
}

/// Runs validate with the given `WEIR_VAR_source` and arguments; whether it passed.
fn passes(dir: &Path, env: Option<&str>, args: &[&str]) -> bool {
    let mut cmd = weir();
    cmd.current_dir(dir).arg("validate").args(args);
    if let Some(v) = env {
        cmd.env("WEIR_VAR_source", v);
    }
    let r = run(&mut cmd);
    match r.code {
        0 => true,
        1 => {
            assert!(
                r.stderr
                    .contains("The value did not come from where it should have."),
                "failed for another reason:\n{}",
                r.stderr
            );
            false
        }
        other => panic!("exit code {other}:\n{}{}", r.stdout, r.stderr),
    }
}

#[test]
fn default_is_the_lowest_precedence() {
    let tmp = precedence_dir("default", &[]);
    assert!(passes(tmp.path(), None, &[]));
    assert!(!passes(tmp.path(), Some("env"), &[]));
}

#[test]
fn environment_beats_default() {
    let tmp = precedence_dir("env", &[]);
    assert!(passes(tmp.path(), Some("env"), &[]));
    assert!(!passes(tmp.path(), None, &[]));
}

#[test]
fn auto_tfvars_beat_environment_in_name_order() {
    let tmp = precedence_dir(
        "b-file",
        &[
            ("a.auto.tfvars", "source = \"a-file\"\n"),
            ("b.auto.tfvars", "source = \"b-file\"\n"),
            // Not an auto file: ignored unless passed with --var-file.
            ("c.tfvars", "source = \"c-file\"\n"),
        ],
    );
    assert!(passes(tmp.path(), Some("env"), &[]));
    assert!(passes(tmp.path(), None, &[]));
}

#[test]
fn var_files_beat_auto_tfvars_in_order() {
    let tmp = precedence_dir(
        "second",
        &[
            ("x.auto.tfvars", "source = \"auto\"\n"),
            ("first.tfvars", "source = \"first\"\n"),
            ("second.tfvars", "source = \"second\"\n"),
        ],
    );
    let args = ["--var-file", "first.tfvars", "--var-file", "second.tfvars"];
    assert!(passes(tmp.path(), Some("env"), &args));
    // In the other order, the first file wins.
    let reversed = ["--var-file", "second.tfvars", "--var-file", "first.tfvars"];
    assert!(!passes(tmp.path(), Some("env"), &reversed));
}

#[test]
fn var_flags_beat_everything_in_order() {
    let tmp = precedence_dir(
        "flag2",
        &[
            ("x.auto.tfvars", "source = \"auto\"\n"),
            ("file.tfvars", "source = \"file\"\n"),
        ],
    );
    let args = [
        "--var",
        "source=flag1",
        "--var-file",
        "file.tfvars",
        "--var",
        "source=flag2",
    ];
    assert!(passes(tmp.path(), Some("env"), &args));
    assert!(!passes(
        tmp.path(),
        Some("env"),
        &["--var", "source=flag2", "--var", "source=flag1"]
    ));
}

#[test]
fn var_for_an_undeclared_variable_is_an_error() {
    let tmp = precedence_dir("default", &[]);
    let r = run(weir()
        .current_dir(tmp.path())
        .args(["validate", "--var", "sorce=x"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("did you mean `source`?"), "{}", r.stderr);
}

#[test]
fn variable_without_value_names_it_and_how_to_set_it() {
    let tmp = config_dir(&[(
        "main.hcl",
        &format!("{LOCAL_DEPLOYMENT}\nvariable \"region\" {{\n  type = string\n}}\n"),
    )]);
    let r = run(weir().current_dir(tmp.path()).arg("validate"));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("main.hcl:7:1: error: variable `region` has no value"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--var region="), "{}", r.stderr);
    assert!(r.stderr.contains("WEIR_VAR_region"), "{}", r.stderr);
    // Setting it from the environment is enough.
    let r = run(weir()
        .current_dir(tmp.path())
        .env("WEIR_VAR_region", "us-central1")
        .arg("validate"));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

// ------------------------------------------------------------------ sensitive values

const SECRET: &str = "tok-7Hq2xWv9Lp3Zr8";

fn sensitive_dir(ty: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let main = format!(
        r#"{LOCAL_DEPLOYMENT}
variable "api_token" {{
  type      = {ty}
  sensitive = true
  default   = "a-harmless-default-value"

  validation {{
    condition     = length(tostring(var.api_token)) > 40
    error_message = "The token is longer than 40 characters."
  }}
}}
"#
    );
    let mut files = vec![("main.hcl", main.as_str())];
    files.extend_from_slice(extra);
    config_dir(&files)
}

fn assert_no_secret(r: &Run, what: &str) {
    assert_eq!(
        r.code, 1,
        "{what}: expected a failure:\n{}{}",
        r.stdout, r.stderr
    );
    for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        assert!(
            !text.contains(SECRET) && !text.contains("7Hq2xWv9"),
            "{what}: the secret appears on {stream}:\n{text}"
        );
    }
}

#[test]
fn sensitive_value_failing_validation_is_not_shown() {
    let tfvars = format!("api_token = \"{SECRET}\"\n");
    let var_file = format!("api_token = \"{SECRET}\"\n");
    for json in [false, true] {
        let with_json = |cmd: &mut Command| {
            if json {
                cmd.arg("--json");
            }
        };
        // From --var.
        let tmp = sensitive_dir("string", &[]);
        let mut cmd = weir();
        cmd.current_dir(tmp.path())
            .args(["validate", "--var", &format!("api_token={SECRET}")]);
        with_json(&mut cmd);
        assert_no_secret(&run(&mut cmd), "--var");
        // From the environment.
        let mut cmd = weir();
        cmd.current_dir(tmp.path())
            .env("WEIR_VAR_api_token", SECRET)
            .arg("validate");
        with_json(&mut cmd);
        assert_no_secret(&run(&mut cmd), "WEIR_VAR_api_token");
        // From an auto.tfvars file (whose line the snippet would show).
        let tmp = sensitive_dir("string", &[("secret.auto.tfvars", &tfvars)]);
        let mut cmd = weir();
        cmd.current_dir(tmp.path()).arg("validate");
        with_json(&mut cmd);
        assert_no_secret(&run(&mut cmd), "*.auto.tfvars");
        // From --var-file.
        let tmp = sensitive_dir("string", &[("secret.tfvars", &var_file)]);
        let mut cmd = weir();
        cmd.current_dir(tmp.path())
            .args(["validate", "--var-file", "secret.tfvars"]);
        with_json(&mut cmd);
        assert_no_secret(&run(&mut cmd), "--var-file");
    }
}

#[test]
fn sensitive_value_of_the_wrong_type_is_not_shown() {
    let tfvars = format!("api_token = \"{SECRET}\"\n");
    for ty in ["number", "bool", "list(string)", "object({ id = number })"] {
        for json in [false, true] {
            let mut sources: Vec<(String, tempfile::TempDir, Vec<String>, Option<&str>)> = vec![
                (
                    "--var".into(),
                    sensitive_dir(ty, &[]),
                    vec!["--var".into(), format!("api_token={SECRET}")],
                    None,
                ),
                ("env".into(), sensitive_dir(ty, &[]), vec![], Some(SECRET)),
                (
                    "auto.tfvars".into(),
                    sensitive_dir(ty, &[("secret.auto.tfvars", &tfvars)]),
                    vec![],
                    None,
                ),
            ];
            for (what, tmp, args, env) in sources.drain(..) {
                let mut cmd = weir();
                cmd.current_dir(tmp.path()).arg("validate").args(&args);
                if json {
                    cmd.arg("--json");
                }
                if let Some(v) = env {
                    cmd.env("WEIR_VAR_api_token", v);
                }
                let r = run(&mut cmd);
                assert_no_secret(&r, &format!("{what} as {ty}"));
                assert!(
                    r.stdout.contains("api_token") || r.stderr.contains("api_token"),
                    "{what} as {ty}: the error does not name the variable:\n{}{}",
                    r.stdout,
                    r.stderr
                );
            }
        }
    }
}

#[test]
fn sensitive_default_in_the_configuration_is_not_shown_in_snippets() {
    // The secret is written in the file itself, next to a line with an error.
    let main = format!(
        r#"{LOCAL_DEPLOYMENT}
variable "api_token" {{
  type      = number
  sensitive = true
  default   = "{SECRET}"
}}
"#
    );
    let tmp = config_dir(&[("main.hcl", &main)]);
    let r = run(weir().current_dir(tmp.path()).arg("validate"));
    assert_no_secret(&r, "default");
}

/// The snippet under a diagnostic shows the source file: a secret written in a `*.tfvars` file
/// or as a `default` is masked there too (checked on the files the diagnostics carry, which is
/// what the snippet is drawn from, and on the rendering).
#[test]
fn sensitive_values_are_masked_in_snippet_sources() {
    let tfvars = format!("api_token = \"{SECRET}\"\n");
    let default = format!(
        "{LOCAL_DEPLOYMENT}\nvariable \"api_token\" {{\n  type      = number\n  sensitive = true\n  default   = \"{SECRET}\"\n}}\n"
    );
    let dirs = [
        sensitive_dir("number", &[("secret.auto.tfvars", &tfvars)]),
        sensitive_dir("string", &[("secret.auto.tfvars", &tfvars)]),
        config_dir(&[("main.hcl", &default)]),
    ];
    for tmp in &dirs {
        let opts = weir::config::LoadOptions {
            dir: tmp.path().to_path_buf(),
            vars: Vec::new(),
            var_files: Vec::new(),
            env: Vec::new(),
        };
        let (model, diags) = weir::model::load(&opts);
        assert!(model.is_none() && diags.has_errors());
        for d in diags.iter() {
            let loc = d.location.as_ref().expect("located");
            assert!(
                !loc.file.text.contains(SECRET),
                "the snippet source of `{}` holds the secret",
                d.short()
            );
            assert!(!d.render(false).contains(SECRET), "{}", d.render(false));
        }
    }
}

/// `validate --format github`: one workflow command per diagnostic, the file relative to the
/// working directory, GitHub's escaping in the message (`%`, newline) and in the properties
/// (`:` and `,` in the path too), exit 1 on errors, and a value derived from a secret masked.
#[test]
fn validate_format_github_prints_escaped_annotations_without_secrets() {
    let tmp = config_dir(&[(
        "cfg:1,2/main.hcl",
        &format!(
            "variable \"s\" {{\n  type      = string\n  sensitive = true\n}}\n\n{LOCAL_DEPLOYMENT}\npipeline \"orders\" {{\n  block \"load\" {{\n    type = \"data_loader\"\n    code = \"@data_loader\\ndef load(*a, **k):\\n    return 1\\n\"\n  }}\n}}\n\nschedule \"nightly\" {{\n  pipeline = pipeline.orders\n  cron     = \"0 3 * * 100%\"\n  sla      = upper(var.s)\n}}\n"
        ),
    )]);
    let r = run(weir()
        .current_dir(tmp.path())
        .env("WEIR_VAR_s", "Hunter2Secret")
        .args(["-C", "cfg:1,2", "validate", "--format", "github"]));
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    assert!(
        lines[0].starts_with(
            "::error file=cfg%3A1%2C2/main.hcl,line=21,col=14,endLine=21,endColumn=28,title=weir validate::field 5 (day-of-week) `100%25` is invalid:"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("%0Ahelp: one bad cron expression"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(
            "::error file=cfg%3A1%2C2/main.hcl,line=22,col=14,endLine=22,endColumn=26,title=weir validate::the value (sensitive) is not a duration%0Ahelp: "
        ),
        "{}",
        lines[1]
    );
    let all = format!("{}{}", r.stdout, r.stderr);
    for secret in ["Hunter2Secret", "HUNTER2SECRET"] {
        assert!(!all.contains(secret), "{all}");
    }
}

#[test]
fn validate_format_github_of_a_valid_configuration_prints_nothing_and_exits_0() {
    let r = run(weir()
        .arg("-C")
        .arg(example("local"))
        .args(["validate", "--format", "github"]));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "");
}

#[test]
fn validate_json_stays_an_alias_of_format_json() {
    let tmp = config_dir(&[(
        "main.hcl",
        "deployment \"dev\" {\n  target = \"nowhere\"\n}\n",
    )]);
    let json = run(weir()
        .arg("-C")
        .arg(tmp.path())
        .args(["validate", "--json"]));
    let format = run(weir()
        .arg("-C")
        .arg(tmp.path())
        .args(["validate", "--format", "json"]));
    assert_eq!(json.code, 1);
    assert_eq!(format.code, 1);
    assert!(json.stdout.starts_with('['), "{}", json.stdout);
    assert_eq!(json.stdout, format.stdout);
    let both = run(weir()
        .arg("-C")
        .arg(tmp.path())
        .args(["validate", "--json", "--format", "github"]));
    assert_eq!(both.code, 1, "conflicting options are a usage error");
    assert!(
        both.stderr.contains("cannot be used with"),
        "{}",
        both.stderr
    );
}
