//! The example GitHub workflows (`examples/ci/github/*.yml`), run the way GitHub runs them: each
//! job's steps in order, with their `if:` conditions and `env:`, the `run:` steps executed by bash
//! as written in the workflow (calling the scripts next to it), and GitHub's environment
//! (`GITHUB_API_URL`, `GITHUB_REPOSITORY`, `GITHUB_SHA`, `GITHUB_EVENT_PATH`, `GITHUB_OUTPUT`,
//! `GITHUB_STEP_SUMMARY`, `RUNNER_TEMP`, …). The GitHub API is a fake on 127.0.0.1
//! (`tests/support/fake_forge.rs`); the `uses:` steps are stood in for by the test (checkout: the
//! repository is already there; setup-weir: weir is on PATH; auth: the `local` target needs no
//! cloud; upload-artifact: the file goes to the fake's artifacts). The deployment is a copy of
//! `examples/local` with a sensitive variable, whose value must never reach a comment, an issue,
//! a check run, a summary or a step's log. The GitLab pipeline (`examples/ci/gitlab`) is run the
//! same way, its `script:` lines against the fake's GitLab endpoints.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/fake_forge.rs"]
mod fake_forge;

use cli::copy_dir;

use fake_forge::{BOT, FakeForge, GITLAB_PROJECT, TOKEN};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const SECRET: &str = "hunter2-webhook-7f3a9c";
const REPOSITORY: &str = "acme/pipelines";

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sha(n: u32) -> String {
    format!("{n:040x}")
}

#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Success,
    Failure(i32),
    Skipped,
}

#[derive(Debug)]
struct Step {
    name: String,
    outcome: Outcome,
    outputs: BTreeMap<String, String>,
}

#[derive(Debug)]
struct Job {
    steps: Vec<Step>,
    /// Everything the `run:` steps printed, as the job's log shows it.
    log: String,
    summary: String,
}

impl Job {
    fn step(&self, name: &str) -> &Step {
        self.steps
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no step {name:?} in {:#?}", self.steps))
    }

    fn failed(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.outcome, Outcome::Failure(_)))
    }
}

/// A repository holding the deployment, its workflows and scripts where a team puts them, the
/// fake GitHub, and everything the jobs printed.
struct Repository {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    github: FakeForge,
    /// Searched before weir's directory on the jobs' PATH: a stand-in for a program.
    stand_in_bin: Option<PathBuf>,
    runs: u32,
    logs: String,
}

impl Repository {
    fn new() -> Repository {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        // The deployment: examples/local, named as the workflows' WEIR_DEPLOYMENT, with a secret.
        copy_dir(&repo_root().join("examples/local"), &root.join("deploy"));
        let main = root.join("deploy/main.hcl");
        let text = std::fs::read_to_string(&main).unwrap();
        std::fs::write(
            &main,
            text.replace("deployment \"laptop\"", "deployment \"prod\""),
        )
        .unwrap();
        std::fs::write(
            root.join("deploy/secrets.hcl"),
            r#"variable "slack_webhook" {
  type      = string
  sensitive = true
}

pipeline "notify" {
  variables = {
    webhook = var.slack_webhook
  }

  block "load" {
    type   = "data_loader"
    source = "blocks/load_orders.py"
  }
}
"#,
        )
        .unwrap();
        // The workflows and their scripts, copied as docs/ci.md says.
        copy_dir(
            &repo_root().join("examples/ci/github"),
            &root.join(".github/workflows"),
        );
        // GitLab's: the pipeline at the root, its scripts in .gitlab/weir/.
        std::fs::copy(
            repo_root().join("examples/ci/gitlab/.gitlab-ci.yml"),
            root.join(".gitlab-ci.yml"),
        )
        .unwrap();
        copy_dir(
            &repo_root().join("examples/ci/gitlab/scripts"),
            &root.join(".gitlab/weir"),
        );
        Repository {
            _tmp: tmp,
            root,
            github: FakeForge::start(),
            stand_in_bin: None,
            runs: 0,
            logs: String::new(),
        }
    }

    fn deploy(&self) -> PathBuf {
        self.root.join("deploy")
    }

    /// A commit that changes a block's code.
    fn edit_block(&self, marker: &str) {
        let path = self.deploy().join("blocks/load_orders.py");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!("\n# {marker}\n"));
        std::fs::write(path, text).unwrap();
    }

    fn weir(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("-C")
            .arg(self.deploy())
            .args(args)
            .env("WEIR_VAR_slack_webhook", SECRET)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    /// Runs the one job of `.github/workflows/<workflow>` for `event`, on commit `commit`.
    fn run(&mut self, workflow: &str, event: Value, commit: &str) -> Job {
        self.runs += 1;
        let text =
            std::fs::read_to_string(self.root.join(".github/workflows").join(workflow)).unwrap();
        let parsed: Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{workflow} is not YAML: {e}"));
        let jobs = parsed["jobs"].as_object().expect("jobs");
        assert_eq!(jobs.len(), 1, "{workflow}: one job expected");
        let job = jobs.values().next().unwrap();

        let runner_temp = self
            .root
            .parent()
            .unwrap()
            .join(format!("runner-{}", self.runs));
        std::fs::create_dir_all(&runner_temp).unwrap();
        let event_path = runner_temp.join("event.json");
        std::fs::write(&event_path, event.to_string()).unwrap();
        let weir_dir = Path::new(env!("CARGO_BIN_EXE_weir")).parent().unwrap();
        let mut path = format!(
            "{}:{}",
            weir_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        if let Some(bin) = &self.stand_in_bin {
            path = format!("{}:{path}", bin.display());
        }
        let mut env: BTreeMap<String, String> = [
            ("PATH", path.as_str()),
            ("HOME", runner_temp.to_str().unwrap()),
            ("CI", "true"),
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_API_URL", self.github.url.as_str()),
            ("GITHUB_SERVER_URL", "https://github.example"),
            ("GITHUB_REPOSITORY", REPOSITORY),
            ("GITHUB_SHA", commit),
            ("GITHUB_RUN_ID", "4242"),
            ("GITHUB_WORKSPACE", self.root.to_str().unwrap()),
            ("GITHUB_EVENT_PATH", event_path.to_str().unwrap()),
            ("RUNNER_TEMP", runner_temp.to_str().unwrap()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (name, value) in parsed["env"].as_object().into_iter().flatten() {
            env.insert(name.clone(), literal(value));
        }

        let mut steps: Vec<Step> = Vec::new();
        let mut log = String::new();
        let mut summary = String::new();
        for (i, step) in job["steps"].as_array().expect("steps").iter().enumerate() {
            let name = step["name"].as_str().unwrap_or("").to_string();
            if !condition_holds(step["if"].as_str(), &steps) {
                steps.push(Step {
                    name,
                    outcome: Outcome::Skipped,
                    outputs: BTreeMap::new(),
                });
                continue;
            }
            let mut step_env = env.clone();
            for (key, value) in step["env"].as_object().into_iter().flatten() {
                step_env.insert(key.clone(), expression(value.as_str().unwrap_or("")));
            }
            let output_file = runner_temp.join(format!("output-{i}"));
            let summary_file = runner_temp.join(format!("summary-{i}"));
            std::fs::write(&output_file, "").unwrap();
            std::fs::write(&summary_file, "").unwrap();
            step_env.insert("GITHUB_OUTPUT".into(), output_file.display().to_string());
            step_env.insert(
                "GITHUB_STEP_SUMMARY".into(),
                summary_file.display().to_string(),
            );

            let outcome = if let Some(script) = step["run"].as_str() {
                let file = runner_temp.join(format!("step-{i}.sh"));
                std::fs::write(&file, script).unwrap();
                // GitHub's default shell for `run:` on Linux.
                let out = Command::new("bash")
                    .args(["--noprofile", "--norc", "-eo", "pipefail"])
                    .arg(&file)
                    .current_dir(&self.root)
                    .env_clear()
                    .envs(&step_env)
                    .output()
                    .unwrap();
                log.push_str(&format!("## {name}\n"));
                log.push_str(&String::from_utf8_lossy(&out.stdout));
                log.push_str(&String::from_utf8_lossy(&out.stderr));
                match out.status.code() {
                    Some(0) => Outcome::Success,
                    code => Outcome::Failure(code.unwrap_or(-1)),
                }
            } else {
                let uses = step["uses"].as_str().expect("a step runs or uses");
                self.stand_in_for(uses, &step["with"], &steps, &step_env, &event)
            };
            let outputs = std::fs::read_to_string(&output_file)
                .unwrap()
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            summary.push_str(&std::fs::read_to_string(&summary_file).unwrap());
            steps.push(Step {
                name,
                outcome,
                outputs,
            });
        }
        self.logs.push_str(&log);
        self.logs.push_str(&summary);
        Job {
            steps,
            log,
            summary,
        }
    }

    /// What the actions the workflows use do, as far as the next steps can tell.
    fn stand_in_for(
        &self,
        uses: &str,
        with: &Value,
        steps: &[Step],
        env: &BTreeMap<String, String>,
        event: &Value,
    ) -> Outcome {
        if uses.starts_with("actions/checkout@") {
            assert_eq!(with["persist-credentials"], json!(false), "{uses}");
        } else if uses == "$/.github/actions/setup-weir"
            || uses.starts_with("google-github-actions/auth@")
        {
            // weir is on PATH; the local target needs no Google credentials.
        } else if uses.starts_with("actions/upload-artifact@") {
            assert_eq!(
                with["name"],
                json!(
                    "weir-plan-${{ env.WEIR_DEPLOYMENT }}-${{ github.event.pull_request.head.sha }}"
                )
            );
            assert_eq!(with["path"], json!("${{ steps.plan.outputs.plan-file }}"));
            let plan = steps
                .iter()
                .find(|s| s.name == "Plan")
                .and_then(|s| s.outputs.get("plan-file"))
                .expect("the plan step's plan-file output");
            let head = event["pull_request"]["head"]["sha"].as_str().unwrap();
            let name = format!("weir-plan-{}-{head}", env["WEIR_DEPLOYMENT"]);
            self.github
                .upload_artifact(&name, head, zip_of(Path::new(plan)));
        } else {
            panic!("the test has no stand-in for `uses: {uses}`");
        }
        Outcome::Success
    }

    /// Runs job `name` of `.gitlab-ci.yml` as GitLab's runner does: its `script:` lines in one
    /// bash, stopping at the first that fails, in a fresh checkout (no `weir-ci/` left by another
    /// job), with GitLab's predefined variables and the project's CI/CD variables. The
    /// `before_script` only installs weir, which is already on PATH. A successful `weir-plan` keeps
    /// its artifact. Returns the job's exit code and log.
    fn gitlab(&mut self, name: &str, commit: &str, merge_request: Option<u64>) -> (i32, String) {
        let text = std::fs::read_to_string(self.root.join(".gitlab-ci.yml")).unwrap();
        let pipeline: Value = serde_saphyr::from_str(&text).expect(".gitlab-ci.yml is YAML");
        let job = &pipeline[name];
        let before: Vec<&str> = pipeline["default"]["before_script"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            before.iter().any(|l| l.contains("weir-installer.sh")),
            "before_script installs weir: {before:?}"
        );
        let ci_variables: BTreeMap<&str, String> = [
            ("WEIR_GITLAB_TOKEN", TOKEN.to_string()),
            ("WEIR_VAR_slack_webhook", SECRET.to_string()),
            (
                "GCP_WIF_PROVIDER",
                "projects/1/locations/global/workloadIdentityPools/gitlab/providers/weir"
                    .to_string(),
            ),
            (
                "WEIR_PLAN_SERVICE_ACCOUNT",
                "weir-plan@acme.iam.gserviceaccount.com".to_string(),
            ),
            (
                "WEIR_APPLY_SERVICE_ACCOUNT",
                "weir-apply@acme.iam.gserviceaccount.com".to_string(),
            ),
        ]
        .into_iter()
        .collect();
        let weir_dir = Path::new(env!("CARGO_BIN_EXE_weir")).parent().unwrap();
        let mut env: BTreeMap<String, String> = [
            (
                "PATH".to_string(),
                format!(
                    "{}:{}",
                    weir_dir.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            ),
            (
                "HOME".to_string(),
                self.root.parent().unwrap().display().to_string(),
            ),
            ("CI".to_string(), "true".to_string()),
            ("GITLAB_CI".to_string(), "true".to_string()),
            (
                "CI_API_V4_URL".to_string(),
                format!("{}/api/v4", self.github.url),
            ),
            ("CI_PROJECT_ID".to_string(), GITLAB_PROJECT.to_string()),
            (
                "CI_PROJECT_DIR".to_string(),
                self.root.display().to_string(),
            ),
            ("CI_COMMIT_SHA".to_string(), commit.to_string()),
            (
                "CI_JOB_URL".to_string(),
                "https://gitlab.example/acme/pipelines/-/jobs/99".to_string(),
            ),
        ]
        .into_iter()
        .collect();
        if let Some(iid) = merge_request {
            env.insert("CI_MERGE_REQUEST_IID".into(), iid.to_string());
        }
        for (key, value) in &ci_variables {
            env.insert(key.to_string(), value.clone());
        }
        for variables in [&pipeline["variables"], &job["variables"]] {
            for (key, value) in variables.as_object().into_iter().flatten() {
                let value = literal(value);
                let value = match value.strip_prefix('$') {
                    Some(name) => ci_variables[name].clone(),
                    None => value,
                };
                env.insert(key.clone(), value);
            }
        }
        let script: Vec<&str> = job["script"]
            .as_array()
            .expect("script")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let _ = std::fs::remove_dir_all(self.root.join("weir-ci"));
        let out = Command::new("bash")
            .args(["--noprofile", "--norc", "-e", "-c"])
            .arg(script.join("\n"))
            .current_dir(&self.root)
            .env_clear()
            .envs(&env)
            .output()
            .unwrap();
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.logs.push_str(&log);
        let code = out.status.code().unwrap_or(-1);
        if name == "weir-plan" && code == 0 {
            let kept = job["artifacts"]["paths"].as_array().unwrap();
            assert!(kept.contains(&json!("weir-ci/plan.weir")), "{kept:?}");
            let plan = std::fs::read(self.root.join("weir-ci/plan.weir")).unwrap();
            self.github
                .add_plan_job(merge_request.unwrap(), commit, plan);
        }
        (code, log)
    }

    fn plan_pr(&mut self, number: u64, head: &str) -> Job {
        let event = json!({"pull_request": {"number": number, "head": {"sha": head}}});
        self.run("plan.yml", event, &sha(9000 + number as u32))
    }

    fn apply_merge(&mut self, merge: &str) -> Job {
        self.run("apply.yml", json!({"after": merge}), merge)
    }

    fn drift(&mut self) -> Job {
        self.run("drift.yml", json!({"schedule": "17 4 * * *"}), &sha(1))
    }

    /// No secret anywhere the workflows write: logs, summaries, outputs, comments, issues, checks.
    fn assert_no_secret(&self) {
        let everything = format!("{}\n{}", self.logs, self.github.all_text());
        assert!(
            !everything.contains(SECRET),
            "the secret leaked:\n{everything}"
        );
    }
}

/// A workflow-level `env:` value: literals only.
fn literal(value: &Value) -> String {
    match value {
        Value::String(s) => {
            assert!(
                !s.contains("${{"),
                "workflow env {s:?}: the test takes literals only"
            );
            s.clone()
        }
        other => other.to_string(),
    }
}

/// A step's `env:` value: a literal, the job's token or a secret.
fn expression(value: &str) -> String {
    match value {
        "${{ github.token }}" => TOKEN.to_string(),
        "${{ secrets.WEIR_VAR_SLACK_WEBHOOK }}" => SECRET.to_string(),
        v if !v.contains("${{") => v.to_string(),
        v => panic!("the test cannot evaluate the step env {v:?}"),
    }
}

/// GitHub's `if:` for the conditions the workflows use. Without a status function, `success()`
/// (no earlier step failed) is implied.
fn condition_holds(condition: Option<&str>, steps: &[Step]) -> bool {
    let failed = steps
        .iter()
        .any(|s| matches!(s.outcome, Outcome::Failure(_)));
    let Some(condition) = condition else {
        return !failed;
    };
    let inner = condition
        .trim()
        .strip_prefix("${{")
        .and_then(|c| c.strip_suffix("}}"))
        .unwrap_or(condition)
        .trim();
    let mut holds = inner.contains("cancelled()") || !failed;
    for term in inner.split("&&").map(str::trim) {
        if term == "!cancelled()" {
            continue;
        }
        let (left, right, equal) = if let Some((l, r)) = term.split_once("!=") {
            (l.trim(), r.trim(), false)
        } else if let Some((l, r)) = term.split_once("==") {
            (l.trim(), r.trim(), true)
        } else {
            panic!("the test cannot evaluate the condition {condition:?}")
        };
        let id = left
            .strip_prefix("steps.")
            .and_then(|l| l.strip_suffix(".outcome"))
            .unwrap_or_else(|| panic!("the test cannot evaluate {term:?}"));
        let step_name = match id {
            "plan" => "Plan",
            other => panic!("unknown step id {other}"),
        };
        let outcome = steps
            .iter()
            .find(|s| s.name == step_name)
            .map(|s| match s.outcome {
                Outcome::Success => "success",
                Outcome::Failure(_) => "failure",
                Outcome::Skipped => "skipped",
            })
            .unwrap_or("skipped");
        holds &= (outcome == right.trim_matches('\'')) == equal;
    }
    holds
}

/// A zip holding `file` under its own name, as `actions/upload-artifact` makes it.
fn zip_of(file: &Path) -> Vec<u8> {
    let zip = file.with_extension("zip");
    let out = Command::new("python3")
        .args(["-m", "zipfile", "-c"])
        .arg(&zip)
        .arg(file)
        .output()
        .expect("python3 (needed to build the artifact's zip) is not installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&zip).unwrap()
}

fn plan_comments(github: &FakeForge, pr: u64) -> Vec<fake_forge::Comment> {
    github
        .comments_on(pr)
        .into_iter()
        .filter(|c| c.author == BOT && c.body.starts_with("<!-- weir:plan deployment=prod -->\n"))
        .collect()
}

#[test]
fn a_second_push_updates_the_one_plan_comment_of_the_pull_request() {
    let mut repo = Repository::new();
    // Someone quotes the marker: the bot never edits that comment.
    repo.github.add_comment(
        7,
        "mallory",
        "<!-- weir:plan deployment=prod -->\nnot a plan",
    );

    // A long discussion: the plan comment lands on the second page of 100 comments.
    for i in 0..120 {
        let text = format!("review note {i}: {}", "long ".repeat(400));
        repo.github.add_comment(7, "reviewer", &text);
    }

    let first = repo.plan_pr(7, &sha(0xa1));
    assert!(!first.failed(), "{}", first.log);
    assert_eq!(first.step("Plan").outputs["exitcode"], "2");
    let comments = plan_comments(&repo.github, 7);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert!(
        comments[0].body.contains("**Plan: "),
        "{}",
        comments[0].body
    );
    assert!(
        comments[0].body.contains("(sensitive)"),
        "{}",
        comments[0].body
    );
    assert!(comments[0].body.contains(&sha(0xa1)));
    assert!(first.summary.contains("**Plan: "));

    repo.edit_block("second push");
    let second = repo.plan_pr(7, &sha(0xa2));
    assert!(!second.failed(), "{}", second.log);
    let comments = plan_comments(&repo.github, 7);
    assert_eq!(comments.len(), 1, "one plan comment, edited: {comments:#?}");
    assert_eq!(comments[0].edits, 1);
    assert!(
        comments[0].body.contains(&sha(0xa2)),
        "{}",
        comments[0].body
    );
    assert!(
        comments[0].body.contains("second push"),
        "{}",
        comments[0].body
    );
    let all = repo.github.comments_on(7);
    assert_eq!(all.len(), 122, "mallory's, the reviews and the plan");
    assert_eq!(
        all[0].body,
        "<!-- weir:plan deployment=prod -->\nnot a plan"
    );

    // Each push's plan is saved under its commit, for apply.yml; the check says "changes".
    let state = repo.github.state();
    let names: Vec<&str> = state.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("weir-plan-prod-{}", sha(0xa1)),
            format!("weir-plan-prod-{}", sha(0xa2))
        ]
    );
    let conclusions: Vec<&Value> = state.check_runs.iter().map(|c| &c["conclusion"]).collect();
    assert_eq!(conclusions, [&json!("success"), &json!("success")]);
    drop(state);
    repo.assert_no_secret();
}

#[test]
fn a_pull_request_with_nothing_to_do_gets_a_neutral_check_and_a_broken_one_a_failure() {
    let mut repo = Repository::new();
    let out = repo.weir(&["apply", "--auto-approve"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let nothing = repo.plan_pr(3, &sha(0xb1));
    assert!(!nothing.failed(), "{}", nothing.log);
    assert_eq!(nothing.step("Plan").outputs["exitcode"], "0");
    assert_eq!(
        repo.github.state().check_runs[0]["conclusion"],
        json!("neutral")
    );

    std::fs::write(
        repo.deploy().join("broken.hcl"),
        "pipeline \"broken\" {\n  block \"x\" {\n    type = \"data_loader\"\n    source = \"blocks/missing.py\"\n  }\n}\n",
    )
    .unwrap();
    let broken = repo.plan_pr(3, &sha(0xb2));
    assert!(broken.failed());
    assert_eq!(broken.step("Save the plan").outcome, Outcome::Skipped);
    assert!(
        broken.log.contains("::error"),
        "no annotation:\n{}",
        broken.log
    );
    assert_eq!(
        repo.github.state().check_runs[1]["conclusion"],
        json!("failure")
    );
    let comments = plan_comments(&repo.github, 3);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].body.contains("weir plan failed"),
        "{}",
        comments[0].body
    );
    repo.assert_no_secret();
}

#[test]
fn merging_applies_the_reviewed_plan_and_a_stale_plan_is_refused_with_a_comment() {
    let mut repo = Repository::new();
    // Two pull requests planned against the same (empty) state.
    repo.edit_block("pull request 7");
    assert!(!repo.plan_pr(7, &sha(0x71)).failed());
    let pr8 = repo.plan_pr(8, &sha(0x81));
    assert!(!pr8.failed(), "{}", pr8.log);

    // 7 merges: its reviewed plan is applied, and the pull request says so.
    repo.github.merge_pull(7, &sha(0x71), &sha(0x700));
    let applied = repo.apply_merge(&sha(0x700));
    assert!(!applied.failed(), "{}", applied.log);
    assert!(repo.deploy().join("mage_project").is_dir());
    let said = repo.github.comments_on(7);
    assert!(
        said.iter().any(|c| c.body.contains("weir apply: done")),
        "{said:#?}"
    );
    let (code, _) = plan_exit(&repo);
    assert_eq!(code, 0, "the merged configuration is what is deployed");

    // 8 merges after 7 was applied: its plan is stale, refused with exit 3 and a comment.
    repo.github.merge_pull(8, &sha(0x81), &sha(0x800));
    let state_before = std::fs::read(repo.deploy().join(".weir/state.json")).ok();
    let refused = repo.apply_merge(&sha(0x800));
    assert_eq!(
        refused.step("Apply").outcome,
        Outcome::Failure(3),
        "{}",
        refused.log
    );
    assert_eq!(
        std::fs::read(repo.deploy().join(".weir/state.json")).ok(),
        state_before,
        "a refused plan changes nothing"
    );
    let said = repo.github.comments_on(8);
    let refusal = said
        .iter()
        .find(|c| c.body.contains("refused, the reviewed plan is stale"))
        .unwrap_or_else(|| panic!("no refusal comment on #8: {said:#?}"));
    assert!(
        refusal.body.contains("the saved plan is stale:"),
        "{}",
        refusal.body
    );

    // A commit pushed without a pull request has no reviewed plan: nothing runs.
    let direct = repo.apply_merge(&sha(0x900));
    assert!(matches!(
        direct.step("Find the reviewed plan").outcome,
        Outcome::Failure(_)
    ));
    assert_eq!(direct.step("Apply").outcome, Outcome::Skipped);
    assert!(
        direct.log.contains("was not merged from a pull request"),
        "{}",
        direct.log
    );
    repo.assert_no_secret();
}

#[test]
fn drift_opens_one_issue_updates_it_and_closes_it_when_fixed() {
    let mut repo = Repository::new();
    let out = repo.weir(&["apply", "--auto-approve"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let quiet = repo.drift();
    assert!(!quiet.failed(), "{}", quiet.log);
    assert!(repo.github.state().issues.is_empty());

    // Someone edits a block in the deployed project, outside weir.
    let deployed = find_file(&repo.deploy().join("mage_project"), "load_orders.py")
        .expect("weir wrote load_orders.py into the project");
    std::fs::write(&deployed, "# edited by hand\n").unwrap();
    for _ in 0..2 {
        let drifted = repo.drift();
        assert!(!drifted.failed(), "{}", drifted.log);
        assert_eq!(drifted.steps.last().unwrap().outputs["exitcode"], "2");
    }
    let issues = repo.github.state().issues.clone();
    assert_eq!(issues.len(), 1, "one issue, updated: {issues:#?}");
    assert!(issues[0].open);
    assert!(
        issues[0]
            .body
            .starts_with("<!-- weir:drift deployment=prod -->\n"),
        "{}",
        issues[0].body
    );
    assert!(issues[0].title.contains("prod"));

    let out = repo.weir(&["apply", "--auto-approve"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fixed = repo.drift();
    assert!(!fixed.failed(), "{}", fixed.log);
    let issues = repo.github.state().issues.clone();
    assert_eq!(issues.len(), 1);
    assert!(!issues[0].open, "the drift issue is closed once fixed");
    let said = repo.github.comments_on(issues[0].number);
    assert!(
        said.iter()
            .any(|c| c.body.contains("matches its configuration again"))
    );
    repo.assert_no_secret();
}

/// Cancelling a job sends SIGINT, then SIGTERM, to its step's process: apply.sh passes it on to
/// weir (which then stops starting changes, saves the state and releases the lock), waits for it,
/// and reports the interrupted apply on the pull request.
#[test]
fn cancelling_the_apply_passes_sigterm_to_weir_and_says_so_in_the_pull_request() {
    let mut repo = Repository::new();
    assert!(!repo.plan_pr(7, &sha(0x71)).failed());
    repo.github.merge_pull(7, &sha(0x71), &sha(0x700));

    // A weir that applies until it is told to stop (10 s at most), and says which signal stopped it.
    let bin = repo.root.parent().unwrap().join("stand-in-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let started = bin.join("started");
    let stopped = bin.join("stopped");
    let weir = bin.join("weir");
    std::fs::write(
        &weir,
        format!(
            "#!/usr/bin/env bash\n\
             trap 'echo TERM > {stopped:?}; echo \"stopping: SIGTERM\" >&2; exit 143' TERM\n\
             echo $PPID > {started:?}.tmp && mv {started:?}.tmp {started:?}\n\
             for _ in $(seq 200); do sleep 0.05; done\n\
             exit 99\n"
        ),
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&weir).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&weir, permissions).unwrap();
    repo.stand_in_bin = Some(bin.clone());

    // The runner cancelling the job: SIGTERM to the step's shell once weir runs.
    let canceller = std::thread::spawn(move || {
        for _ in 0..600 {
            if let Ok(pid) = std::fs::read_to_string(&started) {
                let status = Command::new("kill")
                    .args(["-TERM", pid.trim()])
                    .status()
                    .unwrap();
                assert!(status.success());
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the stand-in weir never started");
    });
    let cancelled = repo.apply_merge(&sha(0x700));
    canceller.join().unwrap();

    assert_eq!(
        std::fs::read_to_string(&stopped).ok().as_deref(),
        Some("TERM\n"),
        "weir did not get the SIGTERM:\n{}",
        cancelled.log
    );
    assert_eq!(
        cancelled.step("Apply").outcome,
        Outcome::Failure(143),
        "{}",
        cancelled.log
    );
    let said = repo.github.comments_on(7);
    let report = said
        .iter()
        .find(|c| c.body.contains("weir apply: cancelled"))
        .unwrap_or_else(|| panic!("no report of the cancelled apply: {said:#?}"));
    assert!(report.body.contains("stopping: SIGTERM"), "{}", report.body);
}

#[test]
fn gitlab_one_plan_note_updated_the_reviewed_plan_applied_and_a_stale_one_refused() {
    let mut repo = Repository::new();
    repo.github.add_comment(
        5,
        "mallory",
        "<!-- weir:plan deployment=prod -->\nnot a plan",
    );
    let (code, log) = repo.gitlab("weir-plan", &sha(0x51), Some(5));
    assert_eq!(code, 0, "{log}");
    repo.edit_block("gitlab second push");
    let (code, log) = repo.gitlab("weir-plan", &sha(0x52), Some(5));
    assert_eq!(code, 0, "{log}");
    let notes = plan_comments(&repo.github, 5);
    assert_eq!(notes.len(), 1, "one plan note, edited: {notes:#?}");
    assert_eq!(notes[0].edits, 1);
    assert!(notes[0].body.contains(&sha(0x52)) && notes[0].body.contains("gitlab second push"));
    assert!(notes[0].body.contains("(sensitive)"));
    assert_eq!(
        repo.github.comments_on(5).len(),
        2,
        "mallory's note is left alone"
    );

    // Merge request 6 is planned against the same state as 5.
    let (code, log) = repo.gitlab("weir-plan", &sha(0x61), Some(6));
    assert_eq!(code, 0, "{log}");

    repo.github.merge_pull(5, &sha(0x52), &sha(0x500));
    let (code, log) = repo.gitlab("weir-apply", &sha(0x500), None);
    assert_eq!(code, 0, "{log}");
    assert!(
        repo.github
            .comments_on(5)
            .iter()
            .any(|c| c.body.contains("weir apply: done"))
    );

    repo.github.merge_pull(6, &sha(0x61), &sha(0x600));
    let (code, log) = repo.gitlab("weir-apply", &sha(0x600), None);
    assert_eq!(code, 3, "{log}");
    let said = repo.github.comments_on(6);
    assert!(
        said.iter()
            .any(|c| c.body.contains("refused, the reviewed plan is stale")
                && c.body.contains("the saved plan is stale:")),
        "{said:#?}"
    );

    let (code, log) = repo.gitlab("weir-apply", &sha(0x900), None);
    assert_eq!(code, 1);
    assert!(log.contains("was not merged from a merge request"), "{log}");
    repo.assert_no_secret();
}

fn plan_exit(repo: &Repository) -> (i32, String) {
    let out = repo.weir(&["plan", "--detailed-exitcode"]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if entry.file_name() == name {
            return Some(path);
        }
    }
    None
}
