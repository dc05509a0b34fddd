//! `gewe`: run the server, and administer tokens, accounts and pictures on the
//! same data directory (safe while the server runs).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use url::Url;

use crate::auth::Tokens;
use crate::backup;
use crate::config::{DatabaseUrl, Overrides, Settings};
use crate::domain::{
    AccountDraft, Accounts, AppId, BlobGc, Clock, Logins, OutboxEvent, OutboxState, Profiles,
};
use crate::imaging::{self, AvatarSize};
use crate::startup::{Application, open_repo, open_storage};
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "gewe",
    version,
    about = "A self-hosted server that speaks the GeWe WeChat-bot HTTP API"
)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// TOML settings file (lowest priority after built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory holding the SQLite database and the blob folder [default: ./gewe-data].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL [default: sqlite://<data-dir>/gewe.db].
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<DatabaseUrl>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        /// Address to listen on [default: 127.0.0.1:2531].
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Base URL for the avatar links the server hands out [default: http://<listen>].
        #[arg(long)]
        public_url: Option<Url>,
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
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Restore a backup made by `gewe backup` into an empty data dir.
    Restore {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Inspect and retry callback deliveries (the outbox).
    #[command(subcommand)]
    Callbacks(CallbacksCommand),
    /// Delete avatar blobs no row references, once older than GEWE_GC_GRACE_SECS
    /// (what `serve` does every GEWE_GC_INTERVAL_SECS); safe while servers run.
    Gc,
}

#[derive(Debug, Subcommand)]
enum LoginCommand {
    /// Scan and confirm login QR <UUID> (with GEWE_LOGIN_SCAN=manual it waits for
    /// this); checkLogin then answers status 1, then 2. Prints the appId.
    Confirm {
        uuid: String,
        /// Log in as this wxid (a device bound to another wxid refuses it).
        #[arg(long)]
        wxid: Option<String>,
        /// The nickname of a new account.
        #[arg(long)]
        nickname: Option<String>,
        /// Require this security code: checkLogin answers 本次登录需要输入安全验证码
        /// until it is given as captchCode.
        #[arg(long)]
        captcha: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum CallbacksCommand {
    /// A token's deliveries, newest first: id, appId, type, attempts, last
    /// error, next try, state (tab-separated).
    List {
        #[arg(long)]
        token: String,
        /// Only the events given up (past their maximum age).
        #[arg(long)]
        failed: bool,
    },
    /// Make an event due now, with a fresh retry window.
    Retry { id: i64 },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue a new token and print it (the only time it is shown).
    Create {
        #[arg(long)]
        label: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Create an online account owned by a token and print its appId.
    Create {
        #[arg(long)]
        token: String,
        #[arg(long)]
        wxid: Option<String>,
        #[arg(long)]
        nickname: Option<String>,
        #[arg(long)]
        alias: Option<String>,
        #[arg(long)]
        mobile: Option<String>,
        /// 0 unknown, 1 male, 2 female.
        #[arg(long)]
        sex: Option<i64>,
        #[arg(long)]
        province: Option<String>,
        #[arg(long)]
        city: Option<String>,
        #[arg(long)]
        signature: Option<String>,
        #[arg(long)]
        country: Option<String>,
    },
    /// List a token's accounts: appId, wxid, nickname (tab-separated).
    List {
        #[arg(long)]
        token: String,
    },
    /// Drop an online device, as WeChat does to new devices on their first night:
    /// it goes offline until login/reconnection.
    Kick {
        #[arg(value_name = "APPID")]
        app_id: String,
    },
    /// Show one account: its profile, privacy settings and login devices.
    Show {
        app_id: String,
        #[arg(long)]
        token: String,
    },
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Decode a picture and write the five avatar variants (0.jpg, 132.jpg, 96.jpg, 64.jpg, 46.jpg).
    Render {
        file: PathBuf,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut overrides = Overrides {
        data_dir: cli.global.data_dir,
        database_url: cli.global.database_url,
        ..Overrides::default()
    };
    if let Command::Serve { listen, public_url } = &cli.command {
        overrides.listen = *listen;
        overrides.public_url = public_url.clone();
    }
    let settings =
        Settings::load(cli.global.config.as_deref(), &overrides).context("invalid settings")?;
    let quiet = !matches!(cli.command, Command::Serve { .. });
    telemetry::init(settings.log_format, if quiet { "warn" } else { "info" });

    match cli.command {
        Command::Backup { dir } => {
            let copied = backup::backup(&settings, &dir).await?;
            println!(
                "backed up the database and {} avatars ({} files) to {}",
                copied.avatars,
                copied.files,
                dir.display()
            );
        }
        Command::Restore { dir } => {
            let copied = backup::restore(&settings, &dir).await?;
            println!(
                "restored the database and {} avatars ({} files) into {}",
                copied.avatars,
                copied.files,
                settings.data_dir.display()
            );
        }
        Command::Gc => {
            let grace = settings.gc_grace().map_err(anyhow::Error::msg)?;
            let gc = BlobGc::new(open_repo(&settings).await?, open_storage(&settings)?, grace);
            let report = gc.sweep().await?;
            println!(
                "deleted {} unreferenced blobs; kept {} referenced and {} younger than {} s ({} listed)",
                report.deleted,
                report.referenced,
                report.young,
                grace.as_secs(),
                report.objects
            );
        }
        Command::Serve { .. } => {
            Application::build(&settings)
                .await?
                .run_until_stopped()
                .await?
        }
        Command::Token(TokenCommand::Create { label }) => {
            let tokens = Tokens::new(open_repo(&settings).await?, Clock::system());
            println!("{}", tokens.issue(label.as_deref()).await?.token);
        }
        Command::Account(command) => account(&settings, command).await?,
        Command::Login(LoginCommand::Confirm {
            uuid,
            wxid,
            nickname,
            captcha,
        }) => {
            let app_id = logins(&settings)
                .await?
                .confirm(&uuid, wxid, nickname, captcha)
                .await?;
            println!("{app_id}");
        }
        Command::Image(ImageCommand::Render { file, out }) => render(&settings, &file, &out)?,
        Command::Callbacks(command) => callbacks(&settings, command).await?,
    }
    Ok(())
}

async fn callbacks(settings: &Settings, command: CallbacksCommand) -> anyhow::Result<()> {
    let repo = open_repo(settings).await?;
    match command {
        CallbacksCommand::List { token, failed } => {
            let owner = Tokens::new(repo.clone(), Clock::system())
                .authenticate(Some(&token))
                .await
                .map_err(|_| {
                    anyhow::anyhow!("unknown token (create one with `gewe token create`)")
                })?;
            println!("id\tappId\ttype\tattempts\tlast error\tnext try\tstate");
            for event in repo.list_events(owner, failed, 1000).await? {
                println!("{}", delivery_line(&event));
            }
        }
        CallbacksCommand::Retry { id } => {
            if !repo.retry_event(id, Clock::system().unix_now()).await? {
                match repo.find_event(id).await? {
                    None => bail!("no callback event {id}"),
                    Some(e) if e.state == OutboxState::Delivered => {
                        bail!("callback event {id} was already delivered")
                    }
                    Some(_) => bail!("callback event {id} is being delivered right now"),
                }
            }
            println!("callback event {id} is due now");
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
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

async fn account(settings: &Settings, command: AccountCommand) -> anyhow::Result<()> {
    let repo = open_repo(settings).await?;
    let tokens = Tokens::new(repo.clone(), Clock::system());
    let storage = open_storage(settings)?;
    let accounts = Accounts::new(repo.clone(), storage.clone(), Clock::system());
    let owner = |token: String| {
        let tokens = tokens.clone();
        async move {
            tokens
                .authenticate(Some(&token))
                .await
                .map_err(|_| anyhow::anyhow!("unknown token (create one with `gewe token create`)"))
        }
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
            println!("{}", account.app_id);
        }
        AccountCommand::Kick { app_id } => {
            let app_id = AppId::parse(Some(app_id.clone()))
                .map_err(|_| anyhow::anyhow!("not an appId: {app_id:?}"))?;
            logins(settings).await?.kick(&app_id).await?;
        }
        AccountCommand::List { token } => {
            for account in accounts.list(owner(token).await?).await? {
                println!(
                    "{}\t{}\t{}",
                    account.app_id, account.wxid, account.nick_name
                );
            }
        }
        AccountCommand::Show { app_id, token } => {
            let owner = owner(token).await?;
            let app_id =
                AppId::parse(Some(app_id)).map_err(|e| anyhow::anyhow!("bad appId: {e:?}"))?;
            let profiles = Profiles::new(repo, storage, Clock::system()).await?;
            let a = accounts.profile(owner, &app_id).await?;
            println!("appId\t{}", a.app_id);
            println!("wxid\t{}", a.wxid);
            println!("nickName\t{}", a.nick_name);
            println!("alias\t{}", a.alias);
            println!("mobile\t{}", a.mobile);
            println!("uin\t{}", a.uin);
            println!("sex\t{}", a.sex);
            println!("country\t{}", a.country);
            println!("province\t{}", a.province);
            println!("city\t{}", a.city);
            println!("signature\t{}", a.signature);
            println!("regCountry\t{}", a.reg_country);
            println!("snsBgImg\t{}", a.sns_bg_img);
            println!("avatar\t{}", a.avatar_id);
            for p in profiles.privacy_settings(owner, &app_id).await? {
                println!(
                    "privacy\t{}\t{}\t{}",
                    p.option,
                    if p.open { "open" } else { "closed" },
                    p.updated_at
                );
            }
            for d in profiles.login_devices(owner, &app_id).await? {
                println!(
                    "device\t{}\t{}\t{}\t{}",
                    d.uuid, d.device_name, d.device_type, d.last_time
                );
            }
        }
    }
    Ok(())
}

async fn logins(settings: &Settings) -> anyhow::Result<Logins> {
    Ok(Logins::new(
        open_repo(settings).await?,
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
    let limits = settings.avatar_config().limits;
    let avatar = match imaging::render_avatar(&bytes, &limits) {
        Ok(avatar) => avatar,
        Err(e) => bail!("{}: {} ({})", file.display(), e.message(), e.code()),
    };
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for size in AvatarSize::ALL {
        let variant = avatar.get(size);
        let path = out.join(format!("{}.jpg", size.label()));
        std::fs::write(&path, &variant.jpeg)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!(
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
    #[test]
    fn utc_formats_unix_seconds() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(1_764_103_200), "2025-11-25T20:40:00Z");
        assert_eq!(super::utc(951_782_400), "2000-02-29T00:00:00Z");
    }
}
