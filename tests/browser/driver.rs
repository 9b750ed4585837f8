//! Headless Chromium through chromedriver: each [`Browser`] starts its own chromedriver on a free
//! 127.0.0.1 port, in a process group of its own, and kills that group (Chromium included) when
//! dropped, even after a failed assertion.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use api_tests::{free_port, workspace_root};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, SemaphorePermit};

/// How long any awaited page state may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// At most two browsers at once: two cores also run the app under test.
static BROWSERS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(2));

/// A program from an environment variable, or the first of `names` found on `PATH`.
fn program(env: &str, names: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "{} not found (set {env}): run ./scripts/test, which installs Debian's chromium and \
         chromium-driver when they are missing",
        names.join(" or ")
    );
}

/// What a test needs from the browser beyond the defaults.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// `host` → `127.0.0.1:port`, through Chromium's own resolver (for https on a test name).
    pub map_hosts: Vec<(String, u16)>,
}

/// A chromedriver process group; killed on drop.
struct Chromedriver {
    child: Child,
    port: u16,
}

/// Kills `child`'s whole process group (it was started as the group's leader), then reaps it.
pub fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The group holds chromedriver and every Chromium process it started.
        kill_group(&mut self.child);
    }
}

/// A WebDriver session in headless Chromium.
pub struct Browser {
    pub client: Client,
    pub downloads: tempfile::TempDir,
    _profile: tempfile::TempDir,
    _driver: Chromedriver,
    _permit: SemaphorePermit<'static>,
}

impl Browser {
    pub async fn start(options: Options) -> Self {
        Self::start_in(options, None).await
    }

    /// A browser whose language and locale is `lang` (`de-DE`); the environment's when `None`.
    pub async fn start_in(options: Options, lang: Option<&str>) -> Self {
        let permit = BROWSERS.acquire().await.unwrap();
        let chromedriver = program("CHROMEDRIVER", &["chromedriver"]);
        let chromium = program(
            "CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        );
        let port = free_port();
        let profile = tempfile::tempdir().unwrap();
        let log = profile.path().join("chromedriver.log");
        let mut command = Command::new(&chromedriver);
        if let Some(lang) = lang {
            // Chromium on Linux takes its locale from the environment as well as from --lang.
            command
                .env("LANGUAGE", lang.replace('-', "_"))
                .env("LANG", format!("{}.UTF-8", lang.replace('-', "_")));
        }
        let child = command
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
        let driver = Chromedriver { child, port };
        wait_for_driver(driver.port).await;

        let downloads = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--hide-scrollbars".into(),
            "--window-size=1280,1000".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        if let Some(lang) = lang {
            args.push(format!("--lang={lang}"));
        }
        if !options.map_hosts.is_empty() {
            let rules: Vec<String> = options
                .map_hosts
                .iter()
                .map(|(host, port)| format!("MAP {host} 127.0.0.1:{port}"))
                .collect();
            args.push(format!("--host-resolver-rules={}", rules.join(",")));
        }
        let mut capabilities = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": chromium,
                "args": args,
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                },
            },
        });
        if let Some(lang) = lang {
            capabilities["goog:chromeOptions"]["prefs"]["intl.accept_languages"] = json!(lang);
        }
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .unwrap_or_else(|e| {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: String = log.lines().rev().take(40).collect::<Vec<_>>().join("\n");
                panic!(
                    "no Chromium session: {e}\nchromedriver log (last lines, newest first):\n{tail}"
                )
            });
        Self {
            client,
            downloads,
            _profile: profile,
            _driver: driver,
            _permit: permit,
        }
    }

    /// Ends the session (Chromium exits); the driver is killed when `self` drops.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Waits until `css` matches an element and returns it.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Replaces the value of the input or textarea at `css` by typing `text`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input.clear().await.unwrap();
        if !text.is_empty() {
            input.send_keys(text).await.unwrap();
        }
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap()
    }

    /// Polls `check` until it yields `Some`; fails the test with `what` after [`PATIENCE`].
    pub async fn until<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(value) = check().await {
                return value;
            }
            if Instant::now() > deadline {
                let url = self.client.current_url().await.map(|u| u.to_string());
                panic!("timed out waiting for {what} (page: {url:?})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the element at `css` is displayed and its text satisfies `check`.
    pub async fn until_text(&self, css: &str, check: impl Fn(&str) -> bool) -> String {
        self.until(&format!("the text of {css}"), || async {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            if !element.is_displayed().await.ok()? {
                return None;
            }
            let text = element.text().await.ok()?;
            check(&text).then_some(text)
        })
        .await
    }

    /// Whether `css` matches an element that is displayed.
    pub async fn displayed(&self, css: &str) -> bool {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Saves a PNG of the viewport as `target/screenshots/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let dir = workspace_root().join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The files Chromium finished downloading (no `.crdownload` left).
    pub fn downloaded(&self) -> Vec<PathBuf> {
        files_in(self.downloads.path())
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x != "crdownload"))
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_for_driver(port: u16) {
    let status = format!("http://127.0.0.1:{port}/status");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = match client.get(&status).send().await {
            Ok(resp) => resp
                .json::<Value>()
                .await
                .is_ok_and(|v| v["value"]["ready"] == true),
            Err(_) => false,
        };
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not answer on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
