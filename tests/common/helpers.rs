use std::path::{Path, PathBuf};
use std::sync::Arc;

use gewe_server::config::{Settings, TokenIssuing};
use gewe_server::domain::{AccountDraft, Clock, Repository};
use gewe_server::fetch::{Dial, Fetcher, Resolve};
use gewe_server::startup::{Application, Outside, open_repo, open_storage};
use gewe_server::storage::BlobStore;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PREFIXES: [&str; 2] = ["/gewe/v2/api", "/v2/api"];

/// How to start a server for one test.
pub struct Setup {
    /// Reuse a data dir (restart tests); a fresh temp dir when `None`.
    pub data_dir: Option<PathBuf>,
    /// `GEWE_FETCH_ALLOW_NETS`; loopback by default so picture hosts on 127.0.0.1 work.
    pub allow_nets: Vec<&'static str>,
    /// `GEWE_TOKEN_ISSUING`; unset by default (the instance token on loopback).
    pub token_issuing: Option<TokenIssuing>,
    /// Replaces DNS and TCP for the fetcher (SSRF tests).
    pub network: Option<(Arc<dyn Resolve>, Arc<dyn Dial>)>,
    /// The server's clock; the system clock when `None`.
    pub clock: Option<Clock>,
    pub tweak: fn(&mut Settings),
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            data_dir: None,
            allow_nets: vec!["127.0.0.0/8"],
            token_issuing: None,
            network: None,
            clock: None,
            tweak: |_| {},
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: gewe_server::api::AppState,
    pub data_dir: PathBuf,
    _temp: Option<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Setup::default()).await
}

pub async fn spawn_app_with(setup: Setup) -> TestApp {
    ask_subscribers_every_time();
    let (temp, data_dir) = match setup.data_dir {
        Some(dir) => (None, dir),
        None => {
            let temp = tempfile::tempdir().expect("temp dir");
            let dir = temp.path().to_path_buf();
            (Some(temp), dir)
        }
    };
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.clone(),
        token_issuing: setup.token_issuing,
        fetch_allow_nets: setup
            .allow_nets
            .iter()
            .map(|n| n.parse().unwrap())
            .collect(),
        ..Settings::default()
    };
    // The backend of this test run (GEWE_TEST_BACKEND): the data dir's SQLite and
    // blob folder, or its PostgreSQL database and S3 bucket.
    crate::services::configure(&mut settings, &data_dir).await;
    (setup.tweak)(&mut settings);
    let fetcher = match setup.network {
        Some((resolver, dialer)) => {
            Fetcher::with_network(settings.fetch_config(), resolver, dialer)
        }
        None => Fetcher::new(settings.fetch_config()),
    };
    let outside = Outside {
        fetcher,
        clock: setup.clock.unwrap_or_default(),
    };
    let app = Application::build_with(&settings, outside)
        .await
        .expect("server starts");
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        base,
        client: crate::helpers::http_client_builder().build().unwrap(),
        state,
        data_dir,
        _temp: temp,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs JSON to a GeWe route and returns the decoded envelope, checking the
    /// parts of the wire format every GeWe answer shares.
    pub async fn call(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut request = self.client.post(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.header("X-GEWE-TOKEN", token);
        }
        self.envelope(request).await
    }

    pub async fn envelope(&self, request: reqwest::RequestBuilder) -> Value {
        let response = request.send().await.expect("request sent");
        assert_eq!(response.status(), 200, "GeWe routes always answer HTTP 200");
        assert_eq!(
            response.headers()["content-type"],
            "application/json;charset=UTF-8"
        );
        let envelope: Value = response.json().await.expect("JSON envelope");
        assert!(envelope["ret"].is_i64(), "ret is an integer: {envelope}");
        assert!(envelope["msg"].is_string(), "msg is a string: {envelope}");
        envelope
    }

    /// A new token of its own, made the way `gewe token create` does (getTokenId
    /// answers the one instance token, so tenants in tests come from here).
    pub async fn new_token(&self) -> String {
        self.state.tokens.issue(None).await.unwrap().token
    }

    /// The instance token, through `tools/getTokenId`.
    pub async fn instance_token(&self) -> String {
        let envelope = self.call("/v2/api/tools/getTokenId", None, json!({})).await;
        assert_eq!(envelope["ret"], 200, "{envelope}");
        envelope["data"].as_str().unwrap().to_owned()
    }

    /// An account owned by `token`, created the way `gewe account create` does.
    pub async fn new_account(&self, token: &str) -> String {
        let owner = self.state.tokens.authenticate(Some(token)).await.unwrap();
        let account = self
            .state
            .accounts
            .create(owner, AccountDraft::default())
            .await
            .unwrap();
        account.app_id.to_string()
    }

    pub async fn profile(&self, token: &str, app_id: &str) -> Value {
        let envelope = self
            .call(
                "/gewe/v2/api/personal/getProfile",
                Some(token),
                json!({ "appId": app_id }),
            )
            .await;
        assert_eq!(envelope["ret"], 200, "{envelope}");
        envelope["data"].clone()
    }

    pub async fn update_head_img(&self, token: &str, app_id: &str, url: &str) -> Value {
        self.call(
            "/gewe/v2/api/personal/updateHeadImg",
            Some(token),
            json!({ "appId": app_id, "headImgUrl": url }),
        )
        .await
    }

    pub async fn history_len(&self, app_id: &str) -> usize {
        let app_id = gewe_server::domain::AppId::parse(Some(app_id.to_owned())).unwrap();
        self.state.repo.avatar_history(&app_id).await.unwrap().len()
    }

    /// Stops the server gracefully and keeps the data dir for a restart.
    pub async fn stop(mut self) -> (PathBuf, Option<TempDir>) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        (self.data_dir.clone(), self._temp.take())
    }
}

/// Avatar objects stored for the server(s) on `data_dir`, in whichever backend.
pub fn blob_files(data_dir: &Path) -> usize {
    crate::services::blob_count(data_dir)
}

/// Asserts an error envelope: ret 500 and the given top-level message.
pub fn assert_error(envelope: &Value, msg: &str) {
    assert_eq!(envelope["ret"], 500, "{envelope}");
    assert_eq!(envelope["msg"], msg, "{envelope}");
}

/// Asserts an error envelope whose `data.msg` contains `needle`.
pub fn assert_error_detail(envelope: &Value, msg: &str, needle: &str) {
    assert_error(envelope, msg);
    let detail = envelope["data"]["msg"].as_str().unwrap_or_default();
    assert!(detail.contains(needle), "expected {needle:?} in {envelope}");
    assert!(envelope["data"]["code"].is_string(), "{envelope}");
}

/// A reqwest client builder for tests. reqwest shares the server's rustls build,
/// which carries no default crypto provider, so the test installs ring like the
/// server does.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy()
}

/// The data of one test (a data dir and what the backend attaches to it), opened
/// as many times as a test wants instances.
pub struct TestData {
    _dir: TempDir,
    pub settings: Settings,
}

impl TestData {
    pub async fn new() -> TestData {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            data_dir: dir.path().to_owned(),
            ..Settings::default()
        };
        crate::services::configure(&mut settings, dir.path()).await;
        TestData {
            _dir: dir,
            settings,
        }
    }

    pub async fn repo(&self) -> Arc<dyn Repository> {
        open_repo(&self.settings).await.unwrap()
    }

    pub fn store(&self) -> BlobStore {
        open_storage(&self.settings).unwrap()
    }
}

/// Log lines are captured by a subscriber scoped to one test (`logs.rs`), while
/// tests run side by side. tracing remembers for each call site whether any
/// subscriber wants it, and a call site first reached while no subscriber is
/// alive is remembered as wanted by none: it then stays silent for a capturing
/// test that starts a moment later (its request-id span went missing about one
/// run in three). A global subscriber that always asks keeps every call site at
/// "ask the thread's subscriber each time".
pub fn ask_subscribers_every_time() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(AskEachTime);
    });
}

/// Wants nothing itself, but asks to be asked about every call site.
struct AskEachTime;

impl tracing::Subscriber for AskEachTime {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
