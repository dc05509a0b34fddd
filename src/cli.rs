//! `gewe`: run the server, and administer tokens, accounts and pictures on the
//! same data directory (safe while the server runs).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use url::Url;

use crate::auth::{AuthError, Tokens};
use crate::backup;
use crate::config::{DatabaseUrl, Overrides, Settings};
use crate::domain::{
    AccountDraft, Accounts, AppId, BlobGc, Clock, Logins, OutboxEvent, OutboxState, Profiles,
    Repository, TokenId,
};
use crate::imaging::{self, AvatarSize};
use crate::startup::{Application, Missing, open_repo, open_repo_if, open_storage, shown_data_dir};
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "gewe",
    version,
    about = "A self-hosted server that speaks the GeWe WeChat-bot HTTP API",
    after_help = "Settings: flags win over GEWE_* variables, which win over the --config \
                  file, which wins over the defaults. Each command's --help lists its options."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the data is: the options every command that reads or writes data shares.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Shared options")]
struct DataArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Folder holding the SQLite database and the blob folder [default: ./gewe-data]
    #[arg(
        long,
        value_name = "DIR",
        env = "GEWE_DATA_DIR",
        hide_env_values = true
    )]
    data_dir: Option<PathBuf>,
    /// Database: sqlite://FILE or postgres://USER:PASSWORD@HOST/DB
    /// [default: sqlite://<data dir>/gewe.db]
    #[arg(
        long,
        value_name = "URL",
        env = "GEWE_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<DatabaseUrl>,
}

/// The settings file, for commands that use settings but no data.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Shared options")]
struct ConfigArgs {
    /// TOML settings file: the GEWE_* names in lower case without the prefix
    /// (`listen = "…"`); relative paths in it are relative to the file
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// A token the command acts for.
#[derive(Debug, Clone, Args)]
struct TokenArg {
    /// The token (X-GEWE-TOKEN); `-` reads it from standard input. Prefer
    /// GEWE_TOKEN or `-`: a token on the command line shows in `ps` and in
    /// shell history
    #[arg(long, value_name = "TOKEN", env = "GEWE_TOKEN", hide_env_values = true)]
    token: String,
}

impl TokenArg {
    fn value(&self) -> anyhow::Result<String> {
        if self.token != "-" {
            return Ok(self.token.trim().to_owned());
        }
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the token from standard input")?;
        let token = line.trim();
        if token.is_empty() {
            bail!("--token - reads the token from standard input, but it was empty");
        }
        Ok(token.to_owned())
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        /// Address to listen on, IP:PORT or HOST:PORT (a name is resolved)
        /// [default: 127.0.0.1:2531]
        #[arg(long, value_name = "ADDR", env = "GEWE_LISTEN", hide_env_values = true,
              value_parser = crate::config::resolve_listen)]
        listen: Option<SocketAddr>,
        /// Base of the avatar links the server hands out [default: http://<listen>]
        #[arg(
            long,
            value_name = "URL",
            env = "GEWE_PUBLIC_URL",
            hide_env_values = true
        )]
        public_url: Option<Url>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Manage API tokens (X-GEWE-TOKEN).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage accounts (devices, appIds).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Act as the phone of a login (the emulated WeChat side).
    #[command(subcommand)]
    Login(LoginCommand),
    /// Run the avatar pipeline on local pictures.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Copy the database and every avatar it references into DIR (empty or new),
    /// consistently, while the server runs (SQLite + blob folder only).
    Backup {
        /// The folder to write the backup to (empty or new)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Restore a backup made by `gewe backup` into an empty data dir.
    Restore {
        /// The folder `gewe backup` wrote
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Inspect and retry callback deliveries (the outbox).
    #[command(subcommand)]
    Callbacks(CallbacksCommand),
    /// Delete avatar blobs no row references, once older than GEWE_GC_GRACE_SECS
    /// (what `serve` does every GEWE_GC_INTERVAL_SECS); safe while servers run.
    Gc {
        #[command(flatten)]
        data: DataArgs,
    },
    #[command(flatten)]
    Operator(operator::OperatorCommand),
}

#[derive(Debug, Subcommand)]
enum LoginCommand {
    /// Scan and confirm login QR <UUID> (with GEWE_LOGIN_SCAN=manual it waits for
    /// this); checkLogin then answers status 1, then 2. Prints the appId.
    Confirm {
        /// The QR's uuid, as getLoginQrCode answered it
        uuid: String,
        /// Log in as this wxid (a device bound to another wxid refuses it)
        #[arg(long)]
        wxid: Option<String>,
        /// The nickname of a new account
        #[arg(long)]
        nickname: Option<String>,
        /// Require this security code: checkLogin answers 本次登录需要输入安全验证码
        /// until it is given as captchCode
        #[arg(long, value_name = "CODE")]
        captcha: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Debug, Subcommand)]
enum CallbacksCommand {
    /// A token's deliveries, newest first: id, appId, type, attempts, last
    /// error, next try, state (tab-separated).
    List {
        #[command(flatten)]
        token: TokenArg,
        /// Only the events given up (past their maximum age)
        #[arg(long)]
        failed: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Make an event due now, with a fresh retry window.
    Retry {
        /// The event's id, as `gewe callbacks list` shows it
        id: i64,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue a new token and print it (the only time it is shown; only its hash
    /// is stored).
    Create {
        /// A name to recognise it by in `gewe token list`
        #[arg(long)]
        label: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// The tokens: id, label, created, last used (UTC, to the minute),
    /// tab-separated; never the token itself.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke a token: it stops authenticating at once; its accounts stay.
    Revoke {
        /// The token's id, as `gewe token list` shows it
        id: i64,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Create an online account owned by a token and print its appId.
    Create {
        #[command(flatten)]
        token: TokenArg,
        /// Its wxid [default: a new wxid_…]
        #[arg(long)]
        wxid: Option<String>,
        /// Its nickname
        #[arg(long)]
        nickname: Option<String>,
        /// Its WeChat ID (alias)
        #[arg(long)]
        alias: Option<String>,
        /// Its mobile number
        #[arg(long)]
        mobile: Option<String>,
        /// 0 unknown, 1 male, 2 female
        #[arg(long)]
        sex: Option<i64>,
        /// Its province
        #[arg(long)]
        province: Option<String>,
        /// Its city
        #[arg(long)]
        city: Option<String>,
        /// Its signature
        #[arg(long)]
        signature: Option<String>,
        /// Its country
        #[arg(long)]
        country: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List a token's accounts: appId, wxid, nickname (tab-separated).
    List {
        #[command(flatten)]
        token: TokenArg,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Drop an online device, as WeChat does to new devices on their first night:
    /// it goes offline until login/reconnection.
    Kick {
        /// The device's appId
        #[arg(value_name = "APPID")]
        app_id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Show one account: its profile, privacy settings and login devices.
    Show {
        /// The device's appId
        #[arg(value_name = "APPID")]
        app_id: String,
        #[command(flatten)]
        token: TokenArg,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Decode a picture and write the five avatar variants (0.jpg, 132.jpg, 96.jpg,
    /// 64.jpg, 46.jpg), with the server's limits (GEWE_FETCH_MAX_BYTES,
    /// GEWE_IMAGE_MAX_*): a picture the server would refuse is refused here.
    Render {
        /// The picture: JPEG, PNG, WebP or GIF
        file: PathBuf,
        /// The folder to write the variants to (created when missing)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

impl Command {
    /// The settings file and data options this command was given.
    fn settings_args(&self) -> (Option<&ConfigArgs>, Option<&DataArgs>) {
        let data = match self {
            Command::Serve { data, .. }
            | Command::Backup { data, .. }
            | Command::Restore { data, .. }
            | Command::Token(TokenCommand::Create { data, .. })
            | Command::Token(TokenCommand::List { data })
            | Command::Token(TokenCommand::Revoke { data, .. })
            | Command::Account(AccountCommand::Create { data, .. })
            | Command::Account(AccountCommand::List { data, .. })
            | Command::Account(AccountCommand::Kick { data, .. })
            | Command::Account(AccountCommand::Show { data, .. })
            | Command::Login(LoginCommand::Confirm { data, .. })
            | Command::Callbacks(CallbacksCommand::List { data, .. })
            | Command::Callbacks(CallbacksCommand::Retry { data, .. })
            | Command::Gc { data } => data,
            Command::Operator(command) => command.data(),
            Command::Image(ImageCommand::Render { config, .. }) => return (Some(config), None),
        };
        (Some(&data.config), Some(data))
    }
}

/// Writes a line to standard output; an error (a closed pipe: `gewe … | head`)
/// ends the command quietly instead of panicking as `println!` would.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err(anyhow::Error::from)?
    }};
}

// After `outln!`, which it uses.
mod operator;

/// Whether `err` is a write to a closed pipe: the reader (`head`) has all it
/// wanted, which is no failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let (config, data) = cli.command.settings_args();
    let mut overrides = Overrides::default();
    if let Some(data) = data {
        overrides.data_dir = data.data_dir.clone();
        overrides.database_url = data.database_url.clone();
    }
    if let Command::Serve {
        listen, public_url, ..
    } = &cli.command
    {
        overrides.listen = *listen;
        overrides.public_url = public_url.clone();
    }
    let config = config.and_then(|c| c.config.clone());
    let settings = Settings::load(config.as_deref(), &overrides)
        .map_err(|e| anyhow::anyhow!("settings refused: {e}"))?;
    let serve = matches!(cli.command, Command::Serve { .. });
    telemetry::init(settings.log_format, if serve { "info" } else { "warn" });
    let uses_data = data.is_some();
    if serve {
        for name in crate::config::unknown_environment() {
            tracing::warn!(code = "setting-unknown", "{name} is not a setting: ignored");
        }
    }
    let outcome = command(&settings, cli.command).await;
    match outcome {
        // Every error says which data it was about, once.
        Err(e) if uses_data && !is_broken_pipe(&e) => {
            let text = format!("{e:#}");
            let folder = shown_data_dir(&settings);
            if text.contains(&format!("data folder {folder}")) {
                Err(anyhow::anyhow!(text))
            } else {
                Err(anyhow::anyhow!(
                    "{text}\n  (database {}, data folder {folder})",
                    settings.database_url()
                ))
            }
        }
        other => other,
    }
}

async fn command(settings: &Settings, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Backup { dir, .. } => {
            let copied = backup::backup(settings, &dir).await?;
            outln!(
                "backed up the database and {} avatars ({} files) to {}",
                copied.avatars,
                copied.files,
                dir.display()
            );
        }
        Command::Restore { dir, .. } => {
            let copied = backup::restore(settings, &dir).await?;
            outln!(
                "restored the database and {} avatars ({} files) into {}",
                copied.avatars,
                copied.files,
                settings.data_dir.display()
            );
        }
        Command::Gc { .. } => {
            let grace = settings.gc_grace().map_err(anyhow::Error::msg)?;
            let gc = BlobGc::new(
                existing_repo(settings).await?,
                open_storage(settings)?,
                grace,
            );
            let report = gc.sweep().await?;
            outln!(
                "deleted {} unreferenced blobs; kept {} referenced and {} younger than {} s ({} listed)",
                report.deleted,
                report.referenced,
                report.young,
                grace.as_secs(),
                report.objects
            );
        }
        Command::Serve { .. } => {
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await?
        }
        Command::Token(command) => token(settings, command).await?,
        Command::Account(command) => account(settings, command).await?,
        Command::Login(LoginCommand::Confirm {
            uuid,
            wxid,
            nickname,
            captcha,
            ..
        }) => {
            let app_id = logins(settings)
                .await?
                .confirm(&uuid, wxid, nickname, captcha)
                .await?;
            outln!("{app_id}");
        }
        Command::Image(ImageCommand::Render { file, out, .. }) => render(settings, &file, &out)?,
        Command::Callbacks(command) => callbacks(settings, command).await?,
        Command::Operator(command) => operator::run(settings, command).await?,
    }
    Ok(())
}

async fn token(settings: &Settings, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { label, .. } => {
            let tokens = Tokens::new(open_repo(settings).await?, Clock::system());
            outln!("{}", tokens.issue(label.as_deref()).await?.token);
        }
        TokenCommand::List { .. } => {
            let tokens = Tokens::new(existing_repo(settings).await?, Clock::system());
            outln!("id\tlabel\tcreated\tlast used");
            for t in tokens.list().await? {
                outln!(
                    "{}\t{}\t{}\t{}",
                    t.id.0,
                    t.label.as_deref().unwrap_or("-"),
                    utc(t.created_at),
                    t.last_used_at
                        .map(utc)
                        .unwrap_or_else(|| "never".to_owned())
                );
            }
        }
        TokenCommand::Revoke { id, .. } => {
            let tokens = Tokens::new(existing_repo(settings).await?, Clock::system());
            tokens.revoke(id).await?;
            outln!("token {id} revoked");
        }
    }
    Ok(())
}

/// The database of a command that only works on existing data.
async fn existing_repo(settings: &Settings) -> anyhow::Result<Arc<dyn Repository>> {
    open_repo_if(settings, Missing::Refuse).await
}

/// The owner of a token given to the CLI, or a sentence saying how to get one.
async fn owner_of(tokens: &Tokens, token: &TokenArg) -> anyhow::Result<TokenId> {
    let token = token.value()?;
    tokens
        .authenticate(Some(&token))
        .await
        .map_err(|e| match e {
            AuthError::Store(e) => anyhow::Error::from(e),
            _ => anyhow::anyhow!(
                "unknown token: not one of this database's (create one with `gewe token create`; \
             `gewe token list` shows them)"
            ),
        })
}

async fn callbacks(settings: &Settings, command: CallbacksCommand) -> anyhow::Result<()> {
    let repo = existing_repo(settings).await?;
    match command {
        CallbacksCommand::List { token, failed, .. } => {
            let owner = owner_of(&Tokens::new(repo.clone(), Clock::system()), &token).await?;
            outln!("id\tappId\ttype\tattempts\tlast error\tnext try\tstate");
            for event in repo.list_events(owner, failed, 1000).await? {
                outln!("{}", delivery_line(&event));
            }
        }
        CallbacksCommand::Retry { id, .. } => {
            if !repo.retry_event(id, Clock::system().unix_now()).await? {
                match repo.find_event(id).await? {
                    None => bail!("no callback event {id}"),
                    Some(e) if e.state == OutboxState::Delivered => {
                        bail!("callback event {id} was already delivered")
                    }
                    Some(_) => bail!("callback event {id} is being delivered right now"),
                }
            }
            outln!("callback event {id} is due now");
        }
    }
    Ok(())
}

/// One `callbacks list` line.
fn delivery_line(event: &OutboxEvent) -> String {
    let next = match event.state {
        OutboxState::Pending => utc(event.next_attempt_at),
        OutboxState::Delivered | OutboxState::Failed => "-".to_owned(),
    };
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        event.id,
        event.app_id,
        event.type_name,
        event.attempts,
        event.last_error.as_deref().unwrap_or("-"),
        next,
        event.state.as_str()
    )
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
fn utc(secs: i64) -> String {
    let (year, month, day, hour, minute, second) = crate::domain::utc_parts(secs);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

async fn account(settings: &Settings, command: AccountCommand) -> anyhow::Result<()> {
    let repo = existing_repo(settings).await?;
    let tokens = Tokens::new(repo.clone(), Clock::system());
    let storage = open_storage(settings)?;
    let accounts = Accounts::new(repo.clone(), storage.clone(), Clock::system());
    let owner = |token: TokenArg| {
        let tokens = tokens.clone();
        async move { owner_of(&tokens, &token).await }
    };
    match command {
        AccountCommand::Create {
            token,
            wxid,
            nickname,
            alias,
            mobile,
            sex,
            province,
            city,
            signature,
            country,
            ..
        } => {
            let draft = AccountDraft {
                wxid,
                nick_name: nickname,
                alias,
                mobile,
                sex,
                province,
                city,
                signature,
                country,
            };
            let account = accounts.create(owner(token).await?, draft).await?;
            outln!("{}", account.app_id);
        }
        AccountCommand::Kick { app_id, .. } => {
            let app_id = AppId::parse(Some(app_id.clone()))
                .map_err(|_| anyhow::anyhow!("not an appId: {app_id:?}"))?;
            logins(settings).await?.kick(&app_id).await?;
        }
        AccountCommand::List { token, .. } => {
            for account in accounts.list(owner(token).await?).await? {
                outln!(
                    "{}\t{}\t{}",
                    account.app_id,
                    account.wxid,
                    account.nick_name
                );
            }
        }
        AccountCommand::Show { app_id, token, .. } => {
            let owner = owner(token).await?;
            let app_id =
                AppId::parse(Some(app_id)).map_err(|e| anyhow::anyhow!("bad appId: {e:?}"))?;
            let profiles = Profiles::new(repo, storage, Clock::system()).await?;
            let a = accounts.profile(owner, &app_id).await?;
            outln!("appId\t{}", a.app_id);
            outln!("wxid\t{}", a.wxid);
            outln!("nickName\t{}", a.nick_name);
            outln!("alias\t{}", a.alias);
            outln!("mobile\t{}", a.mobile);
            outln!("uin\t{}", a.uin);
            outln!("sex\t{}", a.sex);
            outln!("country\t{}", a.country);
            outln!("province\t{}", a.province);
            outln!("city\t{}", a.city);
            outln!("signature\t{}", a.signature);
            outln!("regCountry\t{}", a.reg_country);
            outln!("snsBgImg\t{}", a.sns_bg_img);
            outln!("avatar\t{}", a.avatar_id);
            for p in profiles.privacy_settings(owner, &app_id).await? {
                outln!(
                    "privacy\t{}\t{}\t{}",
                    p.option,
                    if p.open { "open" } else { "closed" },
                    p.updated_at
                );
            }
            for d in profiles.login_devices(owner, &app_id).await? {
                outln!(
                    "device\t{}\t{}\t{}\t{}",
                    d.uuid,
                    d.device_name,
                    d.device_type,
                    d.last_time
                );
            }
        }
    }
    Ok(())
}

async fn logins(settings: &Settings) -> anyhow::Result<Logins> {
    Ok(Logins::new(
        existing_repo(settings).await?,
        open_storage(settings)?,
        Clock::system(),
        settings.login_config(),
    ))
}

fn render(
    settings: &Settings,
    file: &std::path::Path,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let size = bytes.len() as u64;
    if size > settings.fetch_max_bytes {
        bail!(
            "the server would refuse this: {} is {size} bytes, over GEWE_FETCH_MAX_BYTES \
             ({}) (code fetch-too-large)",
            file.display(),
            settings.fetch_max_bytes
        );
    }
    let limits = settings.avatar_config().limits;
    let avatar = match imaging::render_avatar(&bytes, &limits) {
        Ok(avatar) => avatar,
        Err(e) => bail!(
            "the server would refuse this: {}: {e} (code {}; limits GEWE_IMAGE_MAX_SIDE={}, \
             GEWE_IMAGE_MAX_PIXELS={}, GEWE_IMAGE_MAX_ALLOC={})",
            file.display(),
            e.code(),
            limits.max_side,
            limits.max_pixels,
            limits.max_alloc
        ),
    };
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for size in AvatarSize::ALL {
        let variant = avatar.get(size);
        let path = out.join(format!("{}.jpg", size.label()));
        std::fs::write(&path, &variant.jpeg)
            .with_context(|| format!("cannot write {}", path.display()))?;
        outln!(
            "{}\t{}x{}\t{} bytes",
            path.display(),
            variant.side,
            variant.side,
            variant.jpeg.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every option and argument of every command says what it is for.
    #[test]
    fn every_option_and_argument_has_help() {
        fn check(command: &clap::Command, path: &str) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                assert!(
                    arg.get_help().is_some() || arg.get_long_help().is_some(),
                    "{path} {id} has no help text"
                );
            }
            for sub in command.get_subcommands() {
                assert!(
                    sub.get_about().is_some(),
                    "{path} {} has no about",
                    sub.get_name()
                );
                check(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        super::Cli::command().debug_assert();
        check(&super::Cli::command(), "gewe");
    }

    /// Shared options come apart from a command's own, with their variables;
    /// a command is offered only the options it uses.
    #[test]
    fn shared_options_are_listed_apart_with_their_variables() {
        let mut cli = super::Cli::command();
        let account = cli.find_subcommand_mut("account").unwrap();
        let create = account.find_subcommand_mut("create").unwrap();
        let help = create.render_long_help().to_string();
        let shared = help.find("Shared options:").expect(&help);
        let own = help.find("--nickname").expect(&help);
        assert!(own < shared, "{help}");
        for variable in ["GEWE_DATA_DIR", "GEWE_DATABASE_URL", "GEWE_TOKEN"] {
            assert!(help.contains(&format!("[env: {variable}]")), "{help}");
        }
        let mut cli = super::Cli::command();
        let render = cli
            .find_subcommand_mut("image")
            .unwrap()
            .find_subcommand_mut("render")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(render.contains("--config"), "{render}");
        assert!(!render.contains("--data-dir"), "{render}");
        assert!(!render.contains("--database-url"), "{render}");
    }
    #[test]
    fn utc_formats_unix_seconds() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(1_764_103_200), "2025-11-25T20:40:00Z");
        assert_eq!(super::utc(951_782_400), "2000-02-29T00:00:00Z");
    }
}
