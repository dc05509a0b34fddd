//! Builds the application from settings: database, blob store, fetcher, router.

mod listener;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use url::Url;

use crate::api::{self, AppState, AvatarUrls, ControlPlane, Services};
use crate::auth::{Issuing, MIN_CONFIGURED_LEN, OperatorKeys, Tokens};
use crate::config::{ConnectionLimits, Settings, Storage, TokenIssuing};
use crate::console::{self, Console, ConsoleSettings};
use crate::delivery::{Dispatcher, DispatcherConfig};
use crate::domain::{
    Accounts, AvatarUpdater, Callbacks, Clock, Faults, Journal, Logins, Messages, Profiles,
    Repository,
};
use crate::fetch::Fetcher;
use crate::operator;
use crate::repo::{PgRepo, SqliteRepo};
use crate::storage::BlobStore;

/// Opens the database named by the settings (applying migrations; for SQLite,
/// creating the data dir) — shared by `gewe serve` and the CLI, so both see the
/// same data. The URL's scheme picks the engine.
pub async fn open_repo(settings: &Settings) -> anyhow::Result<Arc<dyn Repository>> {
    let database_url = settings.database_url();
    let (url, shown) = (database_url.expose_secret(), database_url.redacted());
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create data dir {}", settings.data_dir.display()))?;
        let repo = SqliteRepo::connect(url)
            .await
            .with_context(|| format!("cannot open database {shown}"))?;
        Ok(Arc::new(repo))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let repo = PgRepo::connect(url, settings.database_max_connections)
            .await
            .with_context(|| format!("cannot open database {shown}"))?;
        Ok(Arc::new(repo))
    } else {
        bail!(
            "unsupported GEWE_DATABASE_URL {shown:?}: use sqlite://FILE or postgres://USER@HOST/DB"
        )
    }
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
    let defaults = DispatcherConfig::default();
    let attempt_secs = i64::try_from(settings.callback_timeout_ms / 1000).unwrap_or(i64::MAX);
    DispatcherConfig {
        // A lease outlives any one attempt by a wide margin.
        lease_secs: defaults.lease_secs.max(attempt_secs.saturating_mul(4)),
        max_in_flight: settings.callback_concurrency.max(1),
        retry_base_secs: settings.callback_retry_base_secs.max(1),
        retry_cap_secs: settings.callback_retry_cap_secs.max(1),
        max_age_secs: settings.callback_max_age_secs.max(0),
        prune_after_days: settings.callback_prune_days.max(0),
        ..defaults
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
        messages: Messages::new(repo.clone(), storage.clone(), clock.clone()),
        operator_keys,
        control,
        callbacks: Callbacks::new(repo.clone(), callback_fetcher, clock.clone()),
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
    limits: ConnectionLimits,
    state: AppState,
    console: Console,
    dispatcher: Dispatcher,
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Outside::real(settings)).await
    }

    /// Like `build`, with the outside world replaced (tests inject a resolver and
    /// dialer that never leave the machine, and a clock they move).
    pub async fn build_with(settings: &Settings, outside: Outside) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let local_addr = listener.local_addr()?;
        let public_url = settings.public_url_for(local_addr);
        let callback_fetcher = outside
            .fetcher
            .reconfigured(settings.callback_fetch_config());
        let clock = outside.clock.clone();
        let services = open_services(settings, &public_url, outside).await?;
        let console = console_for(settings, &public_url, &services, clock.clone());
        let dispatcher = Dispatcher::new(
            services.repo.clone(),
            callback_fetcher,
            clock,
            dispatcher_config(settings),
        );
        Ok(Application {
            listener,
            local_addr,
            public_url,
            limits: settings.connection_limits(),
            state: AppState::new(services),
            console,
            dispatcher,
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
            max_connections,
            "gewe-server listening"
        );
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
        // The callback dispatcher runs as long as the server does.
        let dispatcher = self.dispatcher.start();
        let served = listener::serve(
            self.listener,
            api::router_with(
                self.state,
                operator::routes(),
                console::router(self.console),
            ),
            self.limits,
            max_connections,
            shutdown,
        )
        .await;
        dispatcher.stop().await;
        served
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
