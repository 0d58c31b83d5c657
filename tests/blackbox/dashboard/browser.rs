//! A real browser for the dashboard's tests: headless Chromium driven through its driver,
//! `chromedriver`, over the W3C WebDriver protocol (plain JSON over HTTP, with `ureq`).
//! `.ci/run` installs Debian's `chromium` and `chromium-driver`; outside CI, a machine
//! without them skips the browser tests and says so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::common::outside::on_ci;

/// WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
}

fn found(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

impl Browser {
    /// Whether chromium and chromedriver are installed.
    pub fn available() -> bool {
        found("chromedriver").is_some() && found("chromium").is_some()
    }

    /// Chromium, headless, phone-sized unless `width` says otherwise; `None` (skipped)
    /// where there is none and this is not CI.
    pub fn start(test: &str, (width, height): (u32, u32)) -> Option<Browser> {
        let (driver, chromium) = match (found("chromedriver"), found("chromium")) {
            (Some(d), Some(c)) => (d, c),
            _ if on_ci() => {
                panic!("{test}: CI must have chromium and chromedriver (.ci/run installs them)")
            }
            _ => {
                eprintln!("{test}: skipped, it needs chromium and chromedriver (apt-get install chromium chromium-driver)");
                return None;
            }
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let ready = Instant::now();
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(
                ready.elapsed() < Duration::from_secs(20),
                "chromedriver answers"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", format!("--window-size={width},{height}")],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
        };
        let answer = browser.call("POST", "/session", Some(capabilities));
        browser.session = answer["sessionId"].as_str().expect("a session").to_owned();
        Some(browser)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let request = ureq::request(method, &url).timeout(Duration::from_secs(60));
        let answer = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        let answer = match answer {
            Ok(a) | Err(ureq::Error::Status(_, a)) => a,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let body: Value = answer.into_json().expect("WebDriver answers JSON");
        body["value"].clone()
    }

    fn in_session(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let value = self.call(method, &path, body);
        if let Some(error) = value.get("error") {
            panic!("WebDriver {method} {path}: {error}: {}", value["message"]);
        }
        value
    }

    pub fn goto(&self, url: &str) {
        self.in_session("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.in_session("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the page's address ends with `suffix` (a click's navigation is not
    /// awaited by WebDriver); the address then.
    pub fn wait_for_url(&self, suffix: &str, within: Duration) -> Result<String, String> {
        let started = Instant::now();
        loop {
            let url = self.url();
            if url.ends_with(suffix) {
                return Ok(url);
            }
            if started.elapsed() > within {
                return Err(url);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Logs in at `base` with `token`, and waits to be sent to the fleet page.
    pub fn log_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/login"));
        self.type_into("#token", token);
        self.click("button[type=submit]");
        let landed = self.wait_for_url(&format!("{base}/"), Duration::from_secs(5));
        assert!(landed.is_ok(), "logged in: {landed:?}");
    }

    /// The first element `css` selects, if any.
    fn find(&self, css: &str) -> Option<String> {
        let path = format!("/session/{}/element", self.session);
        let value = self.call(
            "POST",
            &path,
            Some(json!({"using": "css selector", "value": css})),
        );
        value[ELEMENT].as_str().map(str::to_owned)
    }

    fn element(&self, css: &str) -> String {
        self.find(css)
            .unwrap_or_else(|| panic!("no element {css} on {}", self.url()))
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.in_session(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.in_session("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Clicks a form's button and waits for the page its answer loads, whatever its
    /// address (a form may answer with the page it was sent from).
    pub fn submit(&self, css: &str) {
        let mark = |script: &str| {
            self.in_session(
                "POST",
                "/execute/sync",
                Some(json!({ "script": script, "args": [] })),
            )
        };
        mark("window.eliotBeforeSubmit = true;");
        self.click(css);
        let started = Instant::now();
        while mark("return window.eliotBeforeSubmit === true;") == json!(true) {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "no page loaded after submitting {css}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn text(&self, css: &str) -> Option<String> {
        let id = self.find(css)?;
        let path = format!("/session/{}/element/{id}/text", self.session);
        self.call("GET", &path, None).as_str().map(str::to_owned)
    }

    /// The attribute `name` of the first element `css` selects, if both exist. Found
    /// and read in one script, so a live page that replaces the element between two
    /// WebDriver calls cannot make the read fail.
    pub fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let script = "const e = document.querySelector(arguments[0]); \
                      return e === null ? null : e.getAttribute(arguments[1]);";
        self.in_session(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [css, name] })),
        )
        .as_str()
        .map(str::to_owned)
    }

    /// How many elements `css` selects.
    pub fn count(&self, css: &str) -> usize {
        let path = format!("/session/{}/elements", self.session);
        let found = self.call(
            "POST",
            &path,
            Some(json!({"using": "css selector", "value": css})),
        );
        found.as_array().map_or(0, Vec::len)
    }

    /// Waits until the attribute `name` of the element `css` selects is one `ok` takes;
    /// the attribute then.
    pub fn wait_for_attribute(
        &self,
        css: &str,
        name: &str,
        within: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let started = Instant::now();
        loop {
            if let Some(value) = self.attribute(css, name).filter(|v| ok(v)) {
                return Some(value);
            }
            if started.elapsed() > within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `css` selects an element whose text `ok` takes; its text then.
    pub fn wait_for(
        &self,
        css: &str,
        within: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let started = Instant::now();
        loop {
            if let Some(text) = self.text(css).filter(|t| ok(t)) {
                return Some(text);
            }
            if started.elapsed() > within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Scrolls the page to the first element `css` selects (a screenshot shows the
    /// viewport).
    pub fn scroll_to(&self, css: &str) {
        let script = "document.querySelector(arguments[0]).scrollIntoView()";
        self.in_session(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [css] })),
        );
    }

    /// The page as a PNG, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let png = self.in_session("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64"))
            .expect("a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the screenshots' folder");
        }
        std::fs::write(path, bytes).expect("the screenshot is written");
    }

    /// The console's messages of level SEVERE (errors) since the last call.
    pub fn console_errors(&self) -> Vec<String> {
        let logs = self.in_session("POST", "/se/log", Some(json!({"type": "browser"})));
        logs.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = ureq::delete(&format!("{}{path}", self.base)).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where the screenshots go: `target/dashboard-screenshots/`.
pub fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots")
}
