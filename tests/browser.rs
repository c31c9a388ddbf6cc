//! The quickstart in a real browser: headless Chromium, driven over WebDriver
//! (chromedriver, fantoccini), through login, + Add a key, Save, the key shown once,
//! Regenerate, Revoke, a reload, a space token, and posts from other origins.
//!
//! It needs Debian's `chromium` and `chromium-driver`, so plain `cargo test` lists it as
//! ignored; `.ci/run` installs them and runs it:
//! `cargo test --test browser -- --ignored`. Screenshots land in
//! `target/tmp/browser-screenshots/`.

#[path = "../examples/quickstart/app.rs"]
mod app;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::Html;
use axum::routing::get;
use fantoccini::{Client, ClientBuilder, Locator};
use http::{Request, StatusCode};
use keygate::{KeyFormat, Keygate, SqliteStore};
use tower::ServiceExt;

const PASSWORD: &str = "browser-test-password";

/// The quickstart's address, which its host check answers to.
static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// chromedriver, stopped when the test ends, however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts chromedriver on a free port and waits until it accepts connections.
async fn driver() -> (Driver, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver on PATH (apt-get install chromium chromium-driver)");
    let driver = Driver(child);
    // Readiness, not timing: poll the port, for at most 20 s.
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (driver, port);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on {port}");
}

async fn browser(port: u16, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1200,860",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session")
}

/// Serves `router` on a free port of `host`.
async fn serve(router: Router, host: &str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((host, 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

/// A page of another origin that posts a form to `action` as soon as it loads.
fn hostile_page(action: String) -> Router {
    Router::new().route(
        "/",
        get(move || {
            let action = action.clone();
            async move {
                Html(format!(
                    "<!doctype html><form id=f method=post action=\"{action}\">\
                     <input name=csrf value=guessed><input name=name value=planted></form>\
                     <script>document.getElementById('f').submit()</script>"
                ))
            }
        }),
    )
}

/// What the quickstart answers to `path` with `key`.
async fn api(app: &Router, path: &str, key: &str) -> StatusCode {
    let request = Request::builder()
        .uri(path)
        .header("host", HOST.get().unwrap().as_str())
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(request).await.unwrap().status()
}

struct Shots(PathBuf);

impl Shots {
    fn new() -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    async fn take(&self, client: &Client, name: &str) {
        let png = client.screenshot().await.unwrap();
        std::fs::write(self.0.join(format!("{name}.png")), png).unwrap();
    }
}

async fn click(client: &Client, locator: Locator<'_>) {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(locator)
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The text of the first `css` element, once the page holding it has settled: an element
/// found while the previous page is being replaced goes stale, so look again.
async fn text_of(client: &Client, css: &str) -> String {
    for _ in 0..200 {
        if let Ok(element) = client.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {css} on {:?}", client.current_url().await);
}

/// Waits (at most 10 s) until the browser is on a page whose path satisfies `wanted`.
async fn wait_for_path(client: &Client, wanted: impl Fn(&str) -> bool) {
    for _ in 0..200 {
        if client
            .current_url()
            .await
            .is_ok_and(|url| wanted(url.path()))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("still on {:?}", client.current_url().await);
}

/// The key the page shows once.
async fn shown_key(client: &Client) -> String {
    let field = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#new-key"))
        .await
        .unwrap();
    field.prop("value").await.unwrap().unwrap()
}

async fn current_path(client: &Client) -> String {
    client.current_url().await.unwrap().path().to_owned()
}

/// Adds a key named `name` through the open page's form and returns the key shown.
async fn add_key(client: &Client, name: &str) -> String {
    click(client, Locator::Css("details.add > summary")).await;
    let field = client.find(Locator::Css("#name")).await.unwrap();
    field.send_keys(name).await.unwrap();
    click(client, Locator::XPath("//button[normalize-space()='Save']")).await;
    shown_key(client).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian's chromium and chromium-driver; .ci/run runs it with --ignored"]
async fn a_person_adds_sees_once_regenerates_and_revokes_a_key_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    let keygate = Keygate::new(SqliteStore::connect(&url).await.unwrap())
        .with_format(KeyFormat::with_prefix("kg_live").unwrap());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let site = listener.local_addr().unwrap();
    let options = app::Options {
        trail: None,
        password: Some(PASSWORD.to_owned()),
        hosts: Some(vec![site.to_string()]),
    };
    let (quickstart, keygate) = app::build(&keygate, options).unwrap();
    let manager = keygate.manager();
    let app = quickstart.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let base = format!("http://{site}");
    HOST.set(site.to_string()).unwrap();
    let (_driver, port) = driver().await;
    let client = browser(port, &dir.path().join("profile")).await;
    let shots = Shots::new();

    // 1. The settings page asks for a login first.
    client
        .goto(&format!("{base}{}", app::SETTINGS))
        .await
        .unwrap();
    assert_eq!(current_path(&client).await, "/login");
    shots.take(&client, "01-login").await;
    client
        .find(Locator::Css("#user"))
        .await
        .unwrap()
        .select_by_value("alice")
        .await
        .unwrap();
    let password = client.find(Locator::Css("#password")).await.unwrap();
    password.send_keys(PASSWORD).await.unwrap();
    click(
        &client,
        Locator::XPath("//button[normalize-space()='Sign in']"),
    )
    .await;
    wait_for_path(&client, |path| path == app::SETTINGS).await;
    assert_eq!(text_of(&client, "h1").await, "API keys");
    assert_eq!(current_path(&client).await, app::SETTINGS);

    // 2. + Add a key → name → Save: the key, once, with a working Copy button.
    let first = add_key(&client, "CI deploys").await;
    assert!(first.starts_with("kg_live_"), "{first}");
    let warning = text_of(&client, ".warning").await;
    assert!(warning.contains("will not be displayed again"), "{warning}");
    // The script un-hides Copy once the page has loaded.
    let mut shown = false;
    for _ in 0..100 {
        let copy = client.find(Locator::Css("button.copy-button")).await;
        if let Ok(copy) = copy
            && copy.is_displayed().await.unwrap_or(false)
        {
            shown = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(shown, "the script showed Copy");
    shots.take(&client, "02-key-shown-once").await;

    // 3. The key works against the API.
    assert_eq!(api(&quickstart, "/me", &first).await, StatusCode::OK);

    // 4. Done → the list names the key, never its secret.
    click(&client, Locator::LinkText("Done")).await;
    wait_for_path(&client, |path| path == app::SETTINGS).await;
    let listed = client.source().await.unwrap();
    assert!(listed.contains("CI deploys"));
    assert!(!listed.contains(&first), "the list holds no secret");
    shots.take(&client, "03-key-list").await;

    // 5. Regenerate, confirmed: the old key 401, the new one 200.
    click(&client, Locator::Css("td.actions a[href$='/regenerate']")).await;
    wait_for_path(&client, |path| path.ends_with("/regenerate")).await;
    let question = text_of(&client, "h1").await;
    assert_eq!(question, "Regenerate “CI deploys”?");
    shots.take(&client, "04-confirm-regenerate").await;
    click(
        &client,
        Locator::XPath("//button[normalize-space()='Regenerate']"),
    )
    .await;
    let second = shown_key(&client).await;
    assert_ne!(first, second);
    assert_eq!(
        api(&quickstart, "/me", &first).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(api(&quickstart, "/me", &second).await, StatusCode::OK);

    // 6. Revoke, confirmed: the key 401, and the page says so.
    click(&client, Locator::LinkText("Done")).await;
    wait_for_path(&client, |path| path == app::SETTINGS).await;
    click(&client, Locator::Css("td.actions a[href$='/revoke']")).await;
    wait_for_path(&client, |path| path.ends_with("/revoke")).await;
    click(
        &client,
        Locator::XPath("//button[normalize-space()='Revoke']"),
    )
    .await;
    wait_for_path(&client, |path| path == app::SETTINGS).await;
    let notice = text_of(&client, ".notice").await;
    assert!(notice.contains("Key revoked"), "{notice}");
    assert_eq!(
        api(&quickstart, "/me", &second).await,
        StatusCode::UNAUTHORIZED
    );
    let state = text_of(&client, "tbody .state").await;
    assert_eq!(state, "revoked");

    // 7. A reload shows no plaintext.
    client.refresh().await.unwrap();
    let reloaded = client.source().await.unwrap();
    assert!(!reloaded.contains(&first) && !reloaded.contains(&second));

    // 8. A space token opens its space only.
    click(&client, Locator::LinkText("API tokens of one")).await;
    wait_for_path(&client, |path| path.ends_with("/spaces/one")).await;
    let token = add_key(&client, "deploy one").await;
    shots.take(&client, "05-space-token-shown-once").await;
    assert_eq!(
        api(&quickstart, "/spaces/one/items", &token).await,
        StatusCode::OK
    );
    assert_eq!(
        api(&quickstart, "/spaces/two/items", &token).await,
        StatusCode::FORBIDDEN
    );
    click(&client, Locator::LinkText("Done")).await;
    wait_for_path(&client, |path| path.ends_with("/spaces/one")).await;
    shots.take(&client, "06-space-tokens").await;
    let keys_before = manager.list_by_user("alice").await.unwrap().len();

    // 9. A form posted from another origin of the same site (another port of this
    //    host: the browser sends the cookies) is refused by the CSRF check...
    let action = format!("{base}{}/create", app::SETTINGS);
    let sibling = serve(hostile_page(action.clone()), "127.0.0.1").await;
    client.goto(&format!("http://{sibling}/")).await.unwrap();
    wait_for_path(&client, |path| path.ends_with("/create")).await;
    assert_eq!(text_of(&client, "h1").await, "Refused");
    shots.take(&client, "07-cross-origin-post-refused").await;
    // ...and one from another site (`localhost` is another site than `127.0.0.1`)
    // does not even carry the session: it lands on the login form.
    let elsewhere = serve(hostile_page(action), "127.0.0.1").await;
    let elsewhere = format!("http://localhost:{}/", elsewhere.port());
    client.goto(&elsewhere).await.unwrap();
    wait_for_path(&client, |path| path == "/login").await;
    assert_eq!(text_of(&client, "h1").await, "Sign in");
    assert_eq!(
        manager.list_by_user("alice").await.unwrap().len(),
        keys_before,
        "no key was planted"
    );

    client.close().await.unwrap();
}
