//! The control plane from the command line: every `/operator/*` action, on the
//! same database (so they work with or without a running server). Answers are
//! printed as JSON, one document per line.

use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use super::{DataArgs, TokenArg};
use crate::api::Services;
use crate::config::Settings;
use crate::domain::{AppId, FaultSpec, Faults, InboundText, Journal, JournalQuery, TokenId};
use crate::operator::seed::{self, Fixture};
use crate::startup::{Missing, Outside, open_repo_if, open_services};

#[derive(Debug, Subcommand)]
pub(super) enum OperatorCommand {
    /// Operator keys for the control plane (X-GEWE-OPERATOR-KEY).
    #[command(subcommand)]
    OperatorKey(OperatorKeyCommand),
    /// Apply a fixture file (TOML or JSON): tokens, accounts, contacts, groups
    /// with fixed ids. Applying it twice changes nothing.
    Seed {
        /// The fixture file
        file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Make an account receive a text message (its bot gets an AddMsg callback).
    Inject(InjectArgs),
    /// Show (or clear) the journal of GeWe calls, oldest first.
    Journal(JournalArgs),
    /// Fault rules: make GeWe routes misbehave on purpose.
    #[command(subcommand)]
    Fault(FaultCommand),
    /// Remove everything a token owns (its accounts, messages, events, journal,
    /// fault rules); the token and its callback URL stay.
    Reset {
        #[command(flatten)]
        token: TokenArg,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum OperatorKeyCommand {
    /// Make a key and print it (the only time it is shown; only its hash is
    /// stored). A running server with the operator API off needs a restart.
    Create {
        /// A name to recognise the key by
        #[arg(long)]
        label: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Debug, Args)]
pub(super) struct InjectArgs {
    /// The receiving account
    #[arg(long)]
    app_id: String,
    /// The text
    #[arg(long)]
    content: String,
    /// The sender's wxid (made up when absent).
    #[arg(long)]
    from: Option<String>,
    /// The sender's nickname
    #[arg(long)]
    from_nickname: Option<String>,
    /// Say it in this group (`<id>@chatroom`).
    #[arg(long)]
    chatroom: Option<String>,
    /// The group's name
    #[arg(long)]
    chatroom_name: Option<String>,
    /// The sender @-mentions the account (groups only).
    #[arg(long)]
    at_self: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
pub(super) struct JournalArgs {
    /// Only this token's calls.
    #[arg(long)]
    token: Option<String>,
    /// Only this route, `module/action`.
    #[arg(long)]
    route: Option<String>,
    /// Only this appId's calls
    #[arg(long)]
    app_id: Option<String>,
    /// The newest this many.
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// Delete the entries instead of showing them.
    #[arg(long)]
    clear: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Subcommand)]
pub(super) enum FaultCommand {
    /// Add a rule; prints it.
    Add {
        /// `module/action` (risk-control defaults to personal/updateHeadImg).
        #[arg(long)]
        route: Option<String>,
        /// Only this appId's calls
        #[arg(long)]
        app_id: Option<String>,
        /// Only this token's calls.
        #[arg(long)]
        token: Option<String>,
        /// risk-control, offline, slow or disconnect.
        #[arg(long)]
        preset: Option<String>,
        /// A whole GeWe envelope (JSON) to answer with.
        #[arg(long)]
        answer: Option<String>,
        /// Wait this long first (milliseconds)
        #[arg(long)]
        delay_ms: Option<i64>,
        /// Close the connection without an answer.
        #[arg(long)]
        close: bool,
        /// The next N matching calls.
        #[arg(long)]
        times: Option<i64>,
        /// A fraction of the matching calls (0 < p ≤ 1).
        #[arg(long)]
        probability: Option<f64>,
        /// Seeds the fraction's draws (reproducible runs)
        #[arg(long)]
        seed: Option<i64>,
        /// The rule ends after this many seconds
        #[arg(long)]
        ttl_secs: Option<i64>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// The rules, one JSON document per line.
    List {
        /// Only the rules that apply to this token
        #[arg(long)]
        token: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Delete rules (all, or one token's).
    Clear {
        /// Only this token's rules
        #[arg(long)]
        token: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
}

impl OperatorCommand {
    /// The data options this command was given.
    pub(super) fn data(&self) -> &DataArgs {
        match self {
            Self::OperatorKey(OperatorKeyCommand::Create { data, .. })
            | Self::Seed { data, .. }
            | Self::Inject(InjectArgs { data, .. })
            | Self::Journal(JournalArgs { data, .. })
            | Self::Fault(FaultCommand::Add { data, .. })
            | Self::Fault(FaultCommand::List { data, .. })
            | Self::Fault(FaultCommand::Clear { data, .. })
            | Self::Reset { data, .. } => data,
        }
    }

    /// Whether it may make a new database: only the commands that set one up.
    fn creates_data(&self) -> bool {
        matches!(self, Self::OperatorKey(_) | Self::Seed { .. })
    }
}

pub(super) async fn run(settings: &Settings, command: OperatorCommand) -> anyhow::Result<()> {
    if !command.creates_data() {
        open_repo_if(settings, Missing::Refuse).await?;
    }
    let services = open_services(
        settings,
        &settings.public_url_for(settings.listen),
        Outside::real(settings),
    )
    .await?;
    let journal = || Journal::new(services.repo.clone(), settings.journal_limit);
    let faults = || Faults::new(services.repo.clone(), crate::domain::Clock::system());
    match command {
        OperatorCommand::OperatorKey(OperatorKeyCommand::Create { label, .. }) => {
            outln!("{}", services.operator_keys.create(label.as_deref()).await?);
        }
        OperatorCommand::Seed { file, .. } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let fixture = Fixture::parse(&text).map_err(|e| anyhow!("{}: {e}", file.display()))?;
            let report = seed::apply(&services, &fixture).await?;
            outln!("{}", serde_json::to_string(&report)?);
        }
        OperatorCommand::Inject(args) => {
            let app_id = app_id(&args.app_id)?;
            let injected = services
                .messages
                .inject(
                    &app_id,
                    InboundText {
                        from: args.from,
                        from_nick_name: args.from_nickname,
                        chatroom: args.chatroom,
                        chatroom_name: args.chatroom_name,
                        content: args.content,
                        at_self: args.at_self,
                    },
                )
                .await?;
            outln!(
                "{}",
                json!({
                    "msgId": injected.message.msg_id,
                    "newMsgId": injected.message.new_msg_id,
                    "msgSeq": injected.message.msg_seq,
                    "createTime": injected.message.created_at,
                    "fromWxid": injected.from_wxid,
                    "toWxid": injected.to_wxid,
                    "chatroomId": injected.chatroom,
                    "eventId": injected.event_id,
                })
            );
        }
        OperatorCommand::Journal(args) => {
            let owner = token(&services, args.token.as_deref()).await?;
            if args.clear {
                outln!("{}", json!({"deleted": journal().clear(owner).await?}));
                return Ok(());
            }
            let entries = journal()
                .query(JournalQuery {
                    owner,
                    route: args.route,
                    app_id: args.app_id,
                    since_ms: None,
                    after_id: None,
                    limit: args.limit,
                })
                .await?;
            for e in entries {
                outln!(
                    "{}",
                    json!({"id": e.id, "at": e.at_ms, "route": e.route, "appId": e.app_id,
                           "request": e.request, "response": e.response,
                           "durationMs": e.duration_ms})
                );
            }
        }
        OperatorCommand::Fault(FaultCommand::Add {
            route,
            app_id,
            token: named,
            preset,
            answer,
            delay_ms,
            close,
            times,
            probability,
            seed,
            ttl_secs,
            ..
        }) => {
            let answer = answer
                .map(|a| serde_json::from_str(&a).context("--answer is not JSON"))
                .transpose()?;
            let rule = faults()
                .add(FaultSpec {
                    owner: token(&services, named.as_deref()).await?,
                    route,
                    app_id,
                    preset,
                    answer,
                    delay_ms,
                    close,
                    times,
                    probability,
                    seed,
                    ttl_secs,
                })
                .await?;
            outln!("{}", json!({"id": rule.id, "route": rule.route}));
        }
        OperatorCommand::Fault(FaultCommand::List { token: named, .. }) => {
            for rule in faults()
                .list(token(&services, named.as_deref()).await?)
                .await?
            {
                outln!(
                    "{}",
                    json!({"id": rule.id, "route": rule.route, "appId": rule.app_id,
                           "answer": rule.answer, "delayMs": rule.delay_ms, "close": rule.close,
                           "remaining": rule.remaining, "probability": rule.probability,
                           "hits": rule.hits, "expiresAt": rule.expires_at})
                );
            }
        }
        OperatorCommand::Fault(FaultCommand::Clear { token: named, .. }) => {
            let deleted = faults()
                .clear(token(&services, named.as_deref()).await?)
                .await?;
            outln!("{}", json!({"deleted": deleted}));
        }
        OperatorCommand::Reset { token: named, .. } => {
            let owner = token(&services, Some(&named.value()?))
                .await?
                .ok_or_else(|| anyhow!("--token is required"))?;
            let removed = services.repo.reset_owner(owner).await?;
            outln!("{}", json!({"removed": removed}));
        }
    }
    Ok(())
}

fn app_id(text: &str) -> anyhow::Result<AppId> {
    AppId::parse(Some(text.to_owned())).map_err(|e| anyhow!("invalid appId {text:?}: {e:?}"))
}

async fn token(services: &Services, token: Option<&str>) -> anyhow::Result<Option<TokenId>> {
    let Some(token) = token else {
        return Ok(None);
    };
    match services.tokens.find(token).await? {
        Some(owner) => Ok(Some(owner)),
        None => bail!("unknown token (create one with `gewe token create`)"),
    }
}
