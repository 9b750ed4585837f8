//! The first five minutes: `./scripts/run` on an empty state prints one line, a dashboard link
//! and a `curl` that posts a lead; the link opens the demo tenant's dashboard with its sample
//! leads, and the curl adds one.
//!
//! The script runs with its own port, state directory and secrets file, so it never touches the
//! repository's `.spin/` or `.env`, and without building (a nested cargo would wait on the lock
//! this test run holds).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use api_tests::{free_port, workspace_root};

use crate::driver::{Browser, Options};

/// How many leads `cfe-ops demo` seeds.
const SAMPLE_LEADS: usize = 12;

/// `scripts/run` in a process group of its own (the script, the app and the seeder); the whole
/// group is killed on drop, even after a failed assertion.
struct Run {
    child: Child,
    stderr: std::path::PathBuf,
}

impl Drop for Run {
    fn drop(&mut self) {
        crate::driver::kill_group(&mut self.child);
    }
}

impl Run {
    fn start(dir: &std::path::Path) -> (Self, mpsc::Receiver<String>) {
        let root = workspace_root();
        let mut needed = vec!["target/release/cfe-ops"];
        if std::env::var_os("SPIN_BIN").is_none_or(|bin| bin.is_empty()) {
            needed.push("target/release/cfe-host");
        }
        for built in needed {
            assert!(
                root.join(built).exists(),
                "{built} is missing: run ./scripts/build first"
            );
        }
        let stderr = dir.join("stderr.log");
        let child = Command::new(root.join("scripts/run"))
            .current_dir(&root)
            .env("LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("STATE_DIR", dir.join("state"))
            .env("ENV_FILE", dir.join("env"))
            .env("SKIP_BUILD", "1")
            .env("CFE_HOST_CACHE_DIR", root.join("target/cfe-host-cache"))
            .env_remove("CFE_DEMO")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut run = Self { child, stderr };
        let stdout = run.child.stdout.take().unwrap();
        let (lines, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        (run, receiver)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

#[tokio::test]
async fn scripts_run_prints_a_dashboard_link_to_the_demo_leads_and_a_curl_that_adds_one() {
    let dir = tempfile::tempdir().unwrap();
    let (run, stdout) = Run::start(dir.path());
    // The first start may compile the components.
    let line = stdout
        .recv_timeout(Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("no line from scripts/run ({e}); stderr:\n{}", run.stderr()));
    let (link, curl) = line
        .strip_prefix("Dashboard: ")
        .and_then(|rest| rest.split_once("   Post a lead: "))
        .unwrap_or_else(|| panic!("not the dashboard line: {line}"));
    assert!(link.contains("/app/#token="), "{link}");
    assert!(curl.starts_with("curl "), "{curl}");
    assert!(
        dir.path().join("env").exists(),
        "the secrets went to ENV_FILE"
    );

    let browser = Browser::start(Options::default()).await;
    browser.goto(link).await;
    browser.find("body[data-ready=true]").await;
    let total = SAMPLE_LEADS.to_string();
    browser.until_text("#lead-total", |t| t == total).await;
    browser
        .until("a row per sample lead", || async {
            let rows = browser.find_all("#leads tbody tr").await.len();
            (rows == SAMPLE_LEADS).then_some(())
        })
        .await;
    browser.screenshot("demo-dashboard").await;

    // The printed curl, exactly as printed, through a shell.
    let posted = Command::new("sh").args(["-c", curl]).output().unwrap();
    let answer = String::from_utf8_lossy(&posted.stdout);
    assert!(posted.status.success(), "{curl}: {answer}");
    assert!(answer.contains(r#""status":"created""#), "{answer}");

    browser.client.refresh().await.unwrap();
    browser.find("body[data-ready=true]").await;
    let total = (SAMPLE_LEADS + 1).to_string();
    browser.until_text("#lead-total", |t| t == total).await;
    browser.close().await;
    drop(run);
}
