//! Builds the application from settings: database, blob store, fetcher, router.

pub mod allocator;
mod connection_threads;
mod listener;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use url::Url;

use crate::api::{self, AppState, AvatarUrls, ControlPlane, Services};
use crate::auth::{Issuing, MIN_CONFIGURED_LEN, OperatorKeys, Tokens};
use crate::config::{ConnectionLimits, Settings, Storage, TokenIssuing};
use crate::console::{self, Console, ConsoleSettings};
use crate::delivery::{Dispatcher, DispatcherConfig};
use crate::domain::{
    Accounts, AvatarUpdater, BlobGc, Callbacks, Clock, Faults, Journal, Logins, Messages,
    OutboxSignal, Profiles, Repository, StoreError,
};
use crate::fetch::Fetcher;
use crate::operator;
use crate::repo::{PgRepo, SqliteRepo};
use crate::storage::BlobStore;
use connection_threads::ConnectionThreads;

/// Whether opening the data may create it: `gewe serve`, `gewe token create`
/// and `gewe restore` may start from nothing; commands that read data refuse a
/// missing data folder or database instead of quietly making an empty one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Create,
    Refuse,
}

/// The data folder as a message names it: absolute, so a command run from
/// another folder says which one it used.
pub fn shown_data_dir(settings: &Settings) -> String {
    std::path::absolute(&settings.data_dir)
        .unwrap_or_else(|_| settings.data_dir.clone())
        .display()
        .to_string()
}

/// The SQLite file a `sqlite:` URL names (`None` for `:memory:`).
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.starts_with(':')).then(|| PathBuf::from(path))
}

/// Opens the database named by the settings (applying migrations; for SQLite,
/// creating the data dir) — shared by `gewe serve` and the CLI, so both see the
/// same data. The URL's scheme picks the engine.
pub async fn open_repo(settings: &Settings) -> anyhow::Result<Arc<dyn Repository>> {
    open_repo_if(settings, Missing::Create).await
}

/// Like [`open_repo`]; with [`Missing::Refuse`], a missing SQLite database (or
/// data folder) is an error naming both, and nothing is created.
pub async fn open_repo_if(
    settings: &Settings,
    missing: Missing,
) -> anyhow::Result<Arc<dyn Repository>> {
    let database_url = settings.database_url();
    let (url, shown) = (database_url.expose_secret(), database_url.redacted());
    if url.starts_with("sqlite:") {
        let dir = &settings.data_dir;
        if dir.is_file() {
            bail!(
                "the data folder {} is a file, not a folder: give --data-dir (GEWE_DATA_DIR) \
                 a folder (a missing one is created)",
                dir.display()
            );
        }
        let file = sqlite_file(url);
        if missing == Missing::Refuse
            && let Some(file) = &file
            && !file.exists()
        {
            bail!(
                "no database at {} (data folder {}): this command reads existing data and \
                 creates none; run it where `gewe serve` keeps its data, or give --data-dir \
                 (GEWE_DATA_DIR) or --database-url",
                file.display(),
                shown_data_dir(settings)
            );
        }
        if let Err(e) = std::fs::create_dir_all(dir) {
            bail!(
                "cannot create the data folder {}: {}; give --data-dir (GEWE_DATA_DIR) a \
                 folder this user may write",
                dir.display(),
                plain_io(&e)
            );
        }
        if let Some(file) = &file {
            writable(file.parent().unwrap_or(dir))?;
        }
        let repo = SqliteRepo::connect(url)
            .await
            .map_err(|e| explain_open_error(e, &shown, file.as_deref()))?;
        Ok(Arc::new(repo))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let repo = PgRepo::connect(url, settings.database_max_connections)
            .await
            .map_err(|e| explain_open_error(e, &shown, None))?;
        Ok(Arc::new(repo))
    } else {
        bail!(
            "unsupported GEWE_DATABASE_URL {shown:?}: use sqlite://FILE or postgres://USER@HOST/DB"
        )
    }
}

/// An I/O error without Rust's `(os error N)` tail.
fn plain_io(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_lowercase(),
        None => text,
    }
}

/// Refuses a folder this process cannot write (SQLite would fail later, and
/// less clearly): tries to create a file in it.
fn writable(dir: &Path) -> anyhow::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let probe = dir.join(format!(".gewe-write-check-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => bail!(
            "cannot write to the folder {}: {}; give --data-dir (GEWE_DATA_DIR) a folder \
             this user may write, or fix its permissions",
            dir.display(),
            plain_io(&e)
        ),
    }
}

/// One sentence for a database that cannot be opened: what, and the likely fix.
fn explain_open_error(err: StoreError, shown: &str, sqlite: Option<&Path>) -> anyhow::Error {
    let StoreError::Backend(source) = &err else {
        return anyhow::anyhow!("cannot open the database {shown}: {err}");
    };
    let Some(sqlx_error) = source.downcast_ref::<sqlx::Error>() else {
        return anyhow::anyhow!("cannot open the database {shown}: {source}");
    };
    match sqlx_error {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            anyhow::anyhow!(
                "PostgreSQL at {shown} refused the connection: is it running and listening \
                 there? Check the host and port of GEWE_DATABASE_URL"
            )
        }
        sqlx::Error::Io(io) => anyhow::anyhow!(
            "cannot reach the database at {shown}: {}; check GEWE_DATABASE_URL",
            plain_io(io)
        ),
        sqlx::Error::PoolTimedOut => anyhow::anyhow!(
            "the database at {shown} did not answer in time: check that it runs and that \
             GEWE_DATABASE_URL names it"
        ),
        sqlx::Error::Database(db) => {
            let message = db.message();
            if let Some(file) = sqlite
                && (message.contains("not a database") || message.contains("malformed"))
            {
                anyhow::anyhow!(
                    "{} is not a SQLite database, or it is damaged ({message}): restore a \
                     backup (`gewe restore`) or move the file away to start empty",
                    file.display()
                )
            } else if let Some(file) = sqlite {
                anyhow::anyhow!("cannot open the database {}: {message}", file.display())
            } else {
                anyhow::anyhow!("the database at {shown} refused: {message}")
            }
        }
        sqlx::Error::Migrate(e) => {
            anyhow::anyhow!("the database {shown} cannot be brought to this version's schema: {e}")
        }
        other => anyhow::anyhow!("cannot open the database {shown}: {other}"),
    }
}

/// The warning for avatar links only this machine can open: the public URL is
/// loopback while the server listens beyond it.
pub fn public_url_warning(listen: SocketAddr, public_url: &Url) -> Option<String> {
    let loopback_url = match public_url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    (loopback_url && !listen.ip().is_loopback()).then(|| {
        format!(
            "the server listens on {listen} but hands out avatar links under {public_url}, \
             which only this machine can open: set GEWE_PUBLIC_URL (or --public-url) to the \
             address clients reach this server at"
        )
    })
}

/// The blob store named by the settings: the local folder, or the S3 bucket.
pub fn open_storage(settings: &Settings) -> anyhow::Result<BlobStore> {
    let store = match &settings.storage {
        Storage::Local => BlobStore::local(&settings.blob_dir())?,
        Storage::S3(s3) => {
            BlobStore::s3(s3).with_context(|| format!("cannot set up S3 bucket {:?}", s3.bucket))?
        }
    };
    Ok(store.with_public_base(settings.avatar_redirect_base.as_ref()))
}

/// The world outside the settings: how the server reaches the network, and its
/// clock. Tests replace both.
pub struct Outside {
    pub fetcher: Fetcher,
    pub clock: Clock,
}

impl Outside {
    pub fn real(settings: &Settings) -> Self {
        Outside {
            fetcher: Fetcher::new(settings.fetch_config()),
            clock: Clock::system(),
        }
    }
}

/// The dispatcher's pace, from the settings.
pub fn dispatcher_config(settings: &Settings) -> DispatcherConfig {
    let attempt_secs = i64::try_from(settings.callback_timeout_ms / 1000).unwrap_or(i64::MAX);
    DispatcherConfig {
        // A lease outlives any one attempt by a wide margin.
        lease_secs: DispatcherConfig::default()
            .lease_secs
            .max(attempt_secs.saturating_mul(4)),
        max_in_flight: settings.callback_concurrency.max(1),
        poll_interval: Duration::from_millis(settings.callback_poll_ms.max(1)),
        retry_base_secs: settings.callback_retry_base_secs.max(1),
        retry_cap_secs: settings.callback_retry_cap_secs.max(1),
        max_age_secs: settings.callback_max_age_secs.max(0),
        prune_after_days: settings.callback_prune_days.max(0),
        ..DispatcherConfig::default()
    }
}

pub async fn open_services(
    settings: &Settings,
    public_url: &Url,
    outside: Outside,
) -> anyhow::Result<Services> {
    let Outside { fetcher, clock } = outside;
    let repo = open_repo(settings).await?;
    let storage = open_storage(settings)?;
    let profiles = Profiles::new(repo.clone(), storage.clone(), clock.clone())
        .await
        .context("cannot read the server secret")?;
    // Callbacks go out over the same network as picture fetches, with their own
    // allow list and limits.
    let callback_fetcher = fetcher.reconfigured(settings.callback_fetch_config());
    let outbox_signal = OutboxSignal::default();
    let configured_key = settings.operator_key.as_ref().map(|k| k.expose_secret());
    if let Some(key) = configured_key
        && key.trim().chars().count() < MIN_CONFIGURED_LEN
    {
        bail!(
            "GEWE_OPERATOR_KEY is too short: use at least {MIN_CONFIGURED_LEN} characters (e.g. `openssl rand -hex 24`)"
        );
    }
    let operator_keys = OperatorKeys::new(repo.clone(), clock.clone(), configured_key);
    let control = operator_keys
        .enabled()
        .await
        .context("cannot read the operator keys")?
        .then(|| ControlPlane {
            journal: Journal::new(repo.clone(), settings.journal_limit),
            faults: Faults::new(repo.clone(), clock.clone()),
            clock: clock.clone(),
        });
    Ok(Services {
        messages: Messages::new(
            repo.clone(),
            storage.clone(),
            clock.clone(),
            outbox_signal.clone(),
        ),
        operator_keys,
        control,
        callbacks: Callbacks::new(
            repo.clone(),
            callback_fetcher,
            clock.clone(),
            outbox_signal.clone(),
        ),
        outbox_signal,
        tokens: Tokens::new(repo.clone(), clock.clone()),
        accounts: Accounts::new(repo.clone(), storage.clone(), clock.clone()),
        logins: Logins::new(
            repo.clone(),
            storage.clone(),
            clock.clone(),
            settings.login_config(),
        ),
        avatars: AvatarUpdater::new(
            fetcher,
            repo.clone(),
            storage.clone(),
            settings.avatar_config(),
            clock,
        ),
        profiles,
        avatar_urls: AvatarUrls::new(public_url),
        token_issuing: token_issuing(settings),
        body_timeout: settings.connection_limits().body_timeout,
        metrics_on_main_listener: settings.metrics_listen.is_none(),
        repo,
        storage,
    })
}

/// The web console over the same services as the API.
fn console_for(
    settings: &Settings,
    public_url: &Url,
    services: &Services,
    clock: Clock,
) -> Console {
    Console::new(console::Inner {
        repo: services.repo.clone(),
        tokens: services.tokens.clone(),
        accounts: services.accounts.clone(),
        avatars: services.avatars.clone(),
        logins: services.logins.clone(),
        profiles: services.profiles.clone(),
        callbacks: services.callbacks.clone(),
        clock,
        settings: ConsoleSettings::new(
            public_url,
            settings.avatar_redirect_base.as_ref(),
            settings.fetch_max_bytes,
        ),
        operator: services
            .control
            .as_ref()
            .map(|control| console::OperatorTools {
                keys: services.operator_keys.clone(),
                journal: control.journal.clone(),
                faults: control.faults.clone(),
                messages: services.messages.clone(),
            }),
    })
}

/// The issuing mode in force: the setting when given; otherwise the instance
/// token while listening on loopback only, and a refusal naming the setting beyond.
pub fn token_issuing(settings: &Settings) -> Issuing {
    match settings.token_issuing {
        Some(TokenIssuing::Instance) => Issuing::Instance,
        Some(TokenIssuing::PerCall) => Issuing::PerCall,
        Some(TokenIssuing::Off) => Issuing::Off,
        None if settings.listen.ip().is_loopback() => Issuing::Instance,
        None => Issuing::NotOnLoopback,
    }
}

pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    public_url: Url,
    /// The database (redacted) and data folder in use, for the start line.
    database: String,
    data_dir: String,
    limits: ConnectionLimits,
    state: AppState,
    console: Console,
    dispatcher: Dispatcher,
    /// `GEWE_METRICS_LISTEN`: `/metrics` on its own listener.
    metrics_listener: Option<TcpListener>,
    /// The periodic blob sweep and its pace; `None`: no sweep.
    gc: Option<(BlobGc, Duration)>,
}

/// Connections the metrics listener serves at once: scrapers, not clients.
const METRICS_MAX_CONNECTIONS: usize = 16;

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Outside::real(settings)).await
    }

    /// Like `build`, with the outside world replaced (tests inject a resolver and
    /// dialer that never leave the machine, and a clock they move).
    pub async fn build_with(settings: &Settings, outside: Outside) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {}: {}; choose another address with --listen (GEWE_LISTEN)",
                settings.listen,
                plain_io(&e)
            )
        })?;
        let local_addr = listener.local_addr()?;
        let public_url = settings.public_url_for(local_addr);
        let callback_fetcher = outside
            .fetcher
            .reconfigured(settings.callback_fetch_config());
        let metrics_listener = match settings.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (GEWE_METRICS_LISTEN)"))?,
            ),
            None => None,
        };
        let gc_grace = settings.gc_grace().map_err(anyhow::Error::msg)?;
        let clock = outside.clock.clone();
        let services = open_services(settings, &public_url, outside).await?;
        let console = console_for(settings, &public_url, &services, clock.clone());
        let gc = (settings.gc_interval_secs > 0).then(|| {
            (
                BlobGc::new(services.repo.clone(), services.storage.clone(), gc_grace),
                Duration::from_secs(settings.gc_interval_secs),
            )
        });
        let dispatcher = Dispatcher::new(
            services.repo.clone(),
            services.outbox_signal.clone(),
            callback_fetcher,
            clock,
            dispatcher_config(settings),
        );
        Ok(Application {
            listener,
            local_addr,
            public_url,
            database: settings.database_url().redacted(),
            data_dir: shown_data_dir(settings),
            limits: settings.connection_limits(),
            state: AppState::new(services),
            console,
            dispatcher,
            metrics_listener,
            gc,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn public_url(&self) -> &Url {
        &self.public_url
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT or SIGTERM, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let open_files = listener::raise_open_files_limit();
        let max_connections = listener::connection_cap(&self.limits, open_files);
        tracing::info!(
            addr = %self.local_addr,
            public_url = %self.public_url,
            database = %self.database,
            data_dir = %self.data_dir,
            max_connections,
            http_threads = self.limits.http_threads,
            "gewe-server listening"
        );
        if let Some(warning) = public_url_warning(self.local_addr, &self.public_url) {
            tracing::warn!(code = "public-url-loopback", "{warning}");
        }
        tracing::info!(
            mode = self.state.token_issuing.describe(),
            "tools/getTokenId issuing mode (GEWE_TOKEN_ISSUING)"
        );
        if self.state.control.is_some() {
            tracing::info!(
                journal_limit = self.state.control.as_ref().map(|c| c.journal.keep()),
                "operator API on: /operator/* with X-GEWE-OPERATOR-KEY; GeWe calls are journaled"
            );
        }
        // Both listeners' connections are served on these threads, and database
        // or outgoing connections a request opened belong to their runtimes:
        // they outlive the dispatcher's last writes.
        let threads = Arc::new(ConnectionThreads::start(self.limits.http_threads)?);
        // The callback dispatcher, the metrics listener and the blob sweep run
        // as long as the server does.
        let dispatcher = self.dispatcher.start();
        let metrics = self.metrics_listener.map(|metrics_listener| {
            if let Ok(addr) = metrics_listener.local_addr() {
                tracing::info!(%addr, "metrics listening (GEWE_METRICS_LISTEN)");
            }
            tokio::spawn(listener::serve(
                metrics_listener,
                api::Served::routed(api::metrics_router(self.state.clone())),
                threads.clone(),
                self.limits,
                METRICS_MAX_CONNECTIONS,
                std::future::pending(),
            ))
        });
        let sweeper = self
            .gc
            .map(|(gc, every)| tokio::spawn(sweep_periodically(gc, every)));
        let served = listener::serve(
            self.listener,
            api::Served::with_avatars(
                api::router_with(
                    self.state.clone(),
                    operator::routes(),
                    console::router(self.console),
                ),
                self.state,
            ),
            threads.clone(),
            self.limits,
            max_connections,
            shutdown,
        )
        .await;
        dispatcher.stop().await;
        for task in [metrics, sweeper].into_iter().flatten() {
            task.abort();
        }
        drop(threads);
        served
    }
}

/// Sweeps unreferenced blobs every `every`, the first time one interval after
/// the start. A failed sweep is logged and tried again next time.
async fn sweep_periodically<T>(gc: BlobGc, every: Duration) -> T {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = gc.sweep().await {
            tracing::warn!(error = %e, "blob gc sweep failed");
        }
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_public_url_beyond_loopback_is_warned_about() {
        let url = |u: &str| Url::parse(u).unwrap();
        let open: SocketAddr = "0.0.0.0:2531".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:2531".parse().unwrap();
        let warning = public_url_warning(open, &url("http://127.0.0.1:2531")).unwrap();
        assert!(warning.contains("GEWE_PUBLIC_URL"), "{warning}");
        assert!(public_url_warning(open, &url("http://localhost:2531/")).is_some());
        assert!(public_url_warning(open, &url("http://[::1]:2531/")).is_some());
        assert!(public_url_warning(open, &url("https://gewe.example.com")).is_none());
        assert!(public_url_warning(local, &url("http://127.0.0.1:2531")).is_none());
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite://./gewe-data/gewe.db?mode=rwc"),
            Some(PathBuf::from("./gewe-data/gewe.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
    }
}
