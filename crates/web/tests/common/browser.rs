//! What the browser test and the browser benchmark share: chromedriver (Debian's
//! `chromium-driver`) started on a free port, a headless Chromium session, signing in on
//! the board's page and waiting for what it shows.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use vigil_testkit::free_port;

/// chromedriver, stopped when dropped.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn chromedriver() -> Driver {
    let port = free_port().expect("a port");
    let program = std::env::var("VIGIL_CHROMEDRIVER").unwrap_or_else(|_| {
        install_if_missing();
        "chromedriver".into()
    });
    let child = Command::new(&program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {program}: {e}. The browser tests need Debian's chromium and \
                 chromium-driver (`apt-get install chromium chromium-driver`; .ci/run \
                 installs them), or VIGIL_CHROMEDRIVER naming a chromedriver"
            )
        });
    Driver { child, port }
}

/// Installs Debian's chromium and chromium-driver when chromedriver is not on the path,
/// as `.ci/run` does, so that the README's test command needs no set-up step (it needs
/// root and the Debian archive; without them the test says what to install).
fn install_if_missing() {
    let found = |name: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found("chromedriver") && found("chromium") {
        return;
    }
    let _ = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && apt-get install -y -qq chromium chromium-driver",
        ])
        .stdout(Stdio::null())
        .status();
}

pub async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--window-size=1920,1080"]}),
    );
    let url = format!("http://127.0.0.1:{}", driver.port);
    // chromedriver takes a moment to listen.
    for _ in 0..100 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => return c,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("chromedriver did not answer on {url}");
}

pub async fn sign_in(c: &Client, base: &str, user: &str) {
    c.goto(base).await.expect("opens the board");
    // Signed out: the board sends the browser to the sign-in page.
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("login"))
        .await
        .expect("the sign-in page");
    c.find(Locator::Id("user"))
        .await
        .expect("a name field")
        .send_keys(user)
        .await
        .expect("typed");
    c.find(Locator::Id("password"))
        .await
        .expect("a password field")
        .send_keys(&format!("{user}-pw"))
        .await
        .expect("typed");
    c.find(Locator::Id("sign-in"))
        .await
        .expect("a button")
        .click()
        .await
        .expect("clicked");
    wait_text(c, "#live", "live").await;
}

/// Waits (up to 15 s) until the element `css` exists and its text contains `text`.
pub async fn wait_text(c: &Client, css: &str, text: &str) -> String {
    let mut last = String::new();
    for _ in 0..150 {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
        {
            if t.contains(text) {
                return t;
            }
            last = t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never showed {text:?}; last: {last:?}");
}

/// Waits (up to 15 s) until no element matches `css`.
pub async fn wait_gone(c: &Client, css: &str) {
    for _ in 0..150 {
        if c.find(Locator::Css(css)).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} is still shown");
}

/// Clicks the element `css`. The board re-renders live: an element found just before an
/// update arrives can be replaced before the click lands (a stale element reference);
/// then it is found again and clicked, for up to 15 s. Any other failure fails the test.
pub async fn click(c: &Client, css: &str) {
    for _ in 0..150 {
        let found = c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match found.click().await {
            Ok(_) => return,
            Err(e) if e.is_stale_element_reference() => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{css}: {e}"),
        }
    }
    panic!("{css} was replaced before every click for 15 s");
}
