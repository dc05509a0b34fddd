//! Settings, layered: command-line flags > `GEWE_*` environment > optional TOML
//! file (`--config`) > built-in defaults.
//!
//! A setting is one field of [`Settings`] (and its default): that alone makes
//! its key known, `GEWE_<KEY>` in the environment and `<key>` in a file. Keys a
//! file holds that are no setting are refused at load, naming the nearest one;
//! values are checked for meaning in [`Settings::check_meaning`]; every message
//! names a key as its user wrote it (`GEWE_LISTEN`, `fetch_timeout_ms` in the
//! file, `--listen`).

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::Value;
use figment::{Figment, Metadata, Provider};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use crate::domain::{AvatarUpdaterConfig, ChangeLimit, LoginConfig, ScanMode};
use crate::fetch::FetchConfig;
use crate::imaging::ImageLimits;
use crate::storage::S3Config;
pub use crate::telemetry::LogFormat;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where `gewe serve` listens; 2531 is the port self-hosted Gewechat uses.
    /// A host name (`localhost:2531`) is resolved at load.
    #[serde(deserialize_with = "listen_addr")]
    pub listen: SocketAddr,
    /// Holds the SQLite database and the blob folder unless configured otherwise.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to `sqlite://<data_dir>/gewe.db`.
    pub database_url: Option<DatabaseUrl>,
    /// PostgreSQL connections one instance keeps at most.
    pub database_max_connections: u32,
    /// Where avatar blobs live, read from the flat keys `storage` and `s3_*`
    /// (`GEWE_STORAGE`, `GEWE_S3_BUCKET`, …); see [`Storage`].
    #[serde(flatten)]
    pub storage: Storage,
    /// When set, `/mmhead/<id>/<size>` redirects to `<base>/avatars/<id>/<size>.jpg`
    /// (a CDN or the bucket's public address) instead of streaming the bytes.
    pub avatar_redirect_base: Option<Url>,
    /// Base of the avatar links the server hands out; defaults to `http://<listen>`.
    pub public_url: Option<Url>,
    /// How `tools/getTokenId` issues tokens: `instance`, `per-call` or `off`.
    /// Unset: `instance` while listening on loopback, refused beyond it.
    pub token_issuing: Option<TokenIssuing>,
    /// Networks exempt from the fetcher's "global addresses only" rule, e.g.
    /// `127.0.0.0/8` for tests or `10.0.0.0/8` for a LAN image host.
    #[serde(deserialize_with = "nets_from_list_or_string")]
    pub fetch_allow_nets: Vec<IpNet>,
    pub fetch_connect_timeout_ms: u64,
    pub fetch_timeout_ms: u64,
    pub fetch_max_bytes: u64,
    pub fetch_max_redirects: usize,
    pub image_max_side: u32,
    pub image_max_pixels: u64,
    pub image_max_alloc: u64,
    /// Pictures decoded at once; 0 means one per CPU core.
    pub decode_slots: usize,
    pub decode_queue_timeout_ms: u64,
    pub process_timeout_ms: u64,
    /// Memory that picture downloads in progress may hold together; divided by
    /// `fetch_max_bytes`, it is how many run at once (at least one).
    pub download_budget_bytes: u64,
    /// Per-account avatar change limit, `"<changes>/<seconds>"` such as `"5/3600"`;
    /// unset (the default) means no limit.
    #[serde(deserialize_with = "optional_change_limit")]
    pub avatar_change_limit: Option<ChangeLimit>,
    /// How long a client may take to send a request's headers; an idle
    /// keep-alive connection is closed after the same time without a new request.
    pub header_timeout_ms: u64,
    /// How long a client may take to send a request's body.
    pub body_timeout_ms: u64,
    /// Connections served at once; more are closed as soon as they are accepted.
    /// 0: as many as the open-files limit allows, less a reserve.
    pub max_connections: usize,
    /// Threads that serve accepted connections, each with its own epoll; 0
    /// means one per CPU core.
    pub http_threads: usize,
    /// On SIGTERM, how long in-flight requests may take before the process exits anyway.
    pub shutdown_grace_ms: u64,
    /// Seconds a login QR stays valid (`GEWE_LOGIN_QR_TTL_SECS`).
    pub login_qr_ttl_secs: u32,
    /// Who scans login QRs: `auto` (the emulated phone, at once) or `manual`
    /// (`gewe login confirm <uuid>`).
    pub login_scan: ScanMode,
    /// A security code every login must give as `captchCode`; unset: none.
    #[serde(deserialize_with = "optional_code")]
    pub login_captcha: Option<String>,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Networks callbacks may be sent to although not global. Unset: loopback
    /// while the server listens on loopback only (bots run next to it), else
    /// none. Set (even empty): exactly these.
    #[serde(
        default,
        deserialize_with = "optional_nets",
        skip_serializing_if = "Option::is_none"
    )]
    pub callback_allow_nets: Option<Vec<IpNet>>,
    /// Time limit of one callback POST (the setCallback ping included), as GeWe's 3 s.
    pub callback_timeout_ms: u64,
    /// First retry delay of an undelivered event; doubles per attempt.
    pub callback_retry_base_secs: i64,
    /// Longest delay between two attempts.
    pub callback_retry_cap_secs: i64,
    /// An event not delivered by this age is kept as failed.
    pub callback_max_age_secs: i64,
    /// Delivered events are deleted this many days after delivery.
    pub callback_prune_days: i64,
    /// Callback deliveries in flight at once (each to a different device).
    pub callback_concurrency: usize,
    /// How often the outbox is looked at for events this process did not
    /// write itself (another instance's, the CLI's, retries coming due).
    pub callback_poll_ms: u64,
    /// Turns the operator API (the test control plane) on: the key its
    /// `X-GEWE-OPERATOR-KEY` header must carry. Unset: on only if
    /// `gewe operator-key create` stored a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_key: Option<OperatorKey>,
    /// GeWe calls the journal keeps per token while the operator API is on.
    pub journal_limit: i64,
    /// Where `GET /metrics` is served on its own; unset: on the main listener.
    pub metrics_listen: Option<SocketAddr>,
    /// An unreferenced blob is deleted only once it is this old; must exceed
    /// the processing deadline (`process_timeout_ms`).
    pub gc_grace_secs: u64,
    /// Seconds between garbage-collection sweeps in `gewe serve`; 0: none.
    pub gc_interval_secs: u64,
}

/// `GEWE_OPERATOR_KEY`: never shown, not even in debug output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OperatorKey(String);

impl From<&str> for OperatorKey {
    fn from(key: &str) -> Self {
        OperatorKey(key.to_owned())
    }
}

impl OperatorKey {
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorKey(***)")
    }
}

/// How the listener treats connections (see the `*_timeout_ms`,
/// `max_connections`, `http_threads` and `shutdown_grace_ms` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// `None`: derived from the open-files limit at start.
    pub max_connections: Option<usize>,
    /// Threads serving connections (at least one).
    pub http_threads: usize,
    pub shutdown_grace: Duration,
}

/// `GEWE_TOKEN_ISSUING`: how `tools/getTokenId` issues tokens over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenIssuing {
    /// The instance's one token, the same on every call (self-hosted Gewechat).
    Instance,
    /// A new token on every call, rate-limited per client address.
    PerCall,
    /// Never over HTTP: `gewe token create` only.
    Off,
}

impl<'de> Deserialize<'de> for TokenIssuing {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        const EXPECTED: &str = "GEWE_TOKEN_ISSUING: instance, per-call or off";
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TokenIssuing;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<TokenIssuing, E> {
                let instead = if v { "instance (or per-call)" } else { "off" };
                Err(E::custom(format!(
                    "GEWE_TOKEN_ISSUING={v} is no longer accepted: use instance, per-call or off \
                     ({instead} is what {v} meant)"
                )))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TokenIssuing, E> {
                match v.trim().to_ascii_lowercase().as_str() {
                    "instance" => Ok(TokenIssuing::Instance),
                    "per-call" => Ok(TokenIssuing::PerCall),
                    "off" => Ok(TokenIssuing::Off),
                    "true" | "false" => self.visit_bool(v.trim() == "true"),
                    _ => Err(E::custom(format!(
                        "GEWE_TOKEN_ISSUING={v:?} is not a mode: use instance, per-call or off"
                    ))),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Largest callback response body read; the rest is dropped unread.
pub const CALLBACK_MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// Where avatar blobs live: one of two complete choices, never a mix.
///
/// Written as flat keys, as users have always written them: `storage =
/// "local" | "s3"` plus `s3_bucket`, `s3_region`, `s3_endpoint` and
/// `s3_path_style` (`GEWE_STORAGE`, `GEWE_S3_BUCKET`, … in the environment).
/// Reading refuses an unknown kind, `s3` without a bucket, and any `s3_*` key
/// given while the storage is local, naming the settings involved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StorageKeys", into = "StorageKeys")]
pub enum Storage {
    /// The folder `<data_dir>/blobs` ([`Settings::blob_dir`]).
    #[default]
    Local,
    /// A bucket; credentials come from the `AWS_*` environment.
    S3(S3Config),
}

/// The flat keys [`Storage`] is read from and written as.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct StorageKeys {
    /// Unset: local. (`Storage::Local` is written as no keys at all, so that
    /// "unset" still means "nobody said" under the defaults layer.)
    #[serde(skip_serializing_if = "Option::is_none")]
    storage: Option<String>,
    /// The bucket, with `storage = "s3"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    s3_bucket: Option<String>,
    /// Unset: `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    s3_region: Option<String>,
    /// An S3-compatible service (MinIO, Ceph, R2, …); AWS itself when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    s3_endpoint: Option<Url>,
    /// Path-style requests (`endpoint/bucket/key`), as MinIO-likes want; AWS's
    /// virtual-hosted style (`bucket.endpoint/key`) when unset or false.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_flexible_bool"
    )]
    s3_path_style: Option<bool>,
}

impl TryFrom<StorageKeys> for Storage {
    type Error = String;

    fn try_from(keys: StorageKeys) -> Result<Self, String> {
        match keys.storage.as_deref() {
            None | Some("local") => {
                let given: Vec<&str> = [
                    ("GEWE_S3_BUCKET", keys.s3_bucket.is_some()),
                    ("GEWE_S3_REGION", keys.s3_region.is_some()),
                    ("GEWE_S3_ENDPOINT", keys.s3_endpoint.is_some()),
                    ("GEWE_S3_PATH_STYLE", keys.s3_path_style.is_some()),
                ]
                .into_iter()
                .filter_map(|(name, set)| set.then_some(name))
                .collect();
                if given.is_empty() {
                    return Ok(Storage::Local);
                }
                let default = if keys.storage.is_none() {
                    " (the default)"
                } else {
                    ""
                };
                Err(format!(
                    "{} given, but GEWE_STORAGE is local{default}: S3 settings need GEWE_STORAGE=s3",
                    given.join(", ")
                ))
            }
            Some("s3") => {
                let bucket = keys
                    .s3_bucket
                    .filter(|b| !b.trim().is_empty())
                    .ok_or("GEWE_STORAGE=s3 needs GEWE_S3_BUCKET (the bucket name)")?;
                if keys
                    .s3_region
                    .as_deref()
                    .is_some_and(|r| r.trim().is_empty())
                {
                    return Err("GEWE_S3_REGION is empty: name a region, or leave it unset \
                                for AWS_REGION, else us-east-1"
                        .to_owned());
                }
                Ok(Storage::S3(S3Config {
                    bucket,
                    region: keys.s3_region,
                    endpoint: keys.s3_endpoint,
                    path_style: keys.s3_path_style.unwrap_or(false),
                }))
            }
            Some(other) => Err(format!(
                "GEWE_STORAGE={other:?} is not a storage kind: use \"local\" or \"s3\""
            )),
        }
    }
}

impl From<Storage> for StorageKeys {
    fn from(storage: Storage) -> Self {
        match storage {
            Storage::Local => StorageKeys::default(),
            Storage::S3(s3) => StorageKeys {
                storage: Some("s3".to_owned()),
                s3_bucket: Some(s3.bucket),
                s3_region: s3.region,
                s3_endpoint: s3.endpoint,
                s3_path_style: Some(s3.path_style),
            },
        }
    }
}

/// A database URL that keeps its password to itself: `Debug` and `Display`
/// show only the scheme, host (with port) and database — never the user, the
/// password, the query (`?password=…`) or the fragment. Only
/// [`DatabaseUrl::expose_secret`] (for connecting) and `Serialize` (for
/// layering settings) give the whole text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(url.into())
    }

    /// The whole URL, password included: for the database driver only.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The URL fit for an error message or a log line: `scheme://host:port/db`.
    /// Text that does not parse as a URL shows as `scheme:<unparseable>` (or
    /// `<unparseable>` without a recognisable scheme). A URL with an `@` after
    /// its authority shows as `scheme:<hidden>`: that is what a password with
    /// an unescaped `/`, `?` or `#` looks like, and where the host seems to
    /// end, the password may go on.
    pub fn redacted(&self) -> String {
        let Ok(url) = Url::parse(&self.0) else {
            return match scheme_of(&self.0) {
                Some(scheme) => format!("{scheme}:<unparseable>"),
                None => "<unparseable>".to_owned(),
            };
        };
        let after_authority = [Some(url.path()), url.query(), url.fragment()];
        if after_authority
            .iter()
            .flatten()
            .any(|part| part.contains('@'))
        {
            return format!("{}:<hidden>", url.scheme());
        }
        let mut shown = format!("{}:", url.scheme());
        if url.has_authority() {
            shown.push_str("//");
            shown.push_str(url.host_str().unwrap_or(""));
            if let Some(port) = url.port() {
                shown.push_str(&format!(":{port}"));
            }
        }
        shown.push_str(url.path());
        shown
    }
}

/// The scheme of URL-like text (RFC 3986: a letter, then letters, digits,
/// `+`, `-`, `.`, up to the first `:`).
fn scheme_of(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.redacted())
            .finish()
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        DatabaseUrl(url)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        DatabaseUrl(url.to_owned())
    }
}

impl Default for Settings {
    fn default() -> Self {
        let fetch = FetchConfig::default();
        let limits = ImageLimits::default();
        let avatar = AvatarUpdaterConfig::default();
        Settings {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2531),
            data_dir: PathBuf::from("./gewe-data"),
            database_url: None,
            database_max_connections: 10,
            storage: Storage::Local,
            avatar_redirect_base: None,
            public_url: None,
            token_issuing: None,
            fetch_allow_nets: fetch.allow_nets,
            fetch_connect_timeout_ms: fetch.connect_timeout.as_millis() as u64,
            fetch_timeout_ms: fetch.total_timeout.as_millis() as u64,
            fetch_max_bytes: fetch.max_bytes,
            fetch_max_redirects: fetch.max_redirects,
            image_max_side: limits.max_side,
            image_max_pixels: limits.max_pixels,
            image_max_alloc: limits.max_alloc,
            decode_slots: 0,
            decode_queue_timeout_ms: avatar.queue_timeout.as_millis() as u64,
            process_timeout_ms: avatar.process_timeout.as_millis() as u64,
            download_budget_bytes: 64 * 1024 * 1024,
            avatar_change_limit: avatar.change_limit,
            // nginx frees a silent client after 60 s (client_header_timeout) and
            // keeps idle connections 75 s; a bot's requests are small, so tighter.
            header_timeout_ms: 20_000,
            body_timeout_ms: 20_000,
            max_connections: 0,
            http_threads: 0,
            shutdown_grace_ms: 30_000,
            login_qr_ttl_secs: 240,
            login_scan: ScanMode::Auto,
            login_captcha: None,
            log_format: LogFormat::Text,
            callback_allow_nets: None,
            callback_timeout_ms: 3000,
            callback_retry_base_secs: 2,
            callback_retry_cap_secs: 600,
            callback_max_age_secs: 24 * 60 * 60,
            callback_prune_days: 7,
            callback_concurrency: 32,
            callback_poll_ms: 200,
            operator_key: None,
            journal_limit: 10_000,
            metrics_listen: None,
            gc_grace_secs: 3600,
            gc_interval_secs: 3600,
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers in charge.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<DatabaseUrl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<Url>,
}

/// Keys that `Settings::default()` does not write out (their
/// `skip_serializing_if` leaves them out when unset), so [`known_keys`] cannot
/// learn them from the defaults. Every other field is known by being a field.
const KEYS_NOT_IN_DEFAULTS: &[&str] = &[
    "callback_allow_nets",
    "operator_key",
    "storage",
    "s3_bucket",
    "s3_region",
    "s3_endpoint",
    "s3_path_style",
];

/// `GEWE_*` variables that are no setting but are read elsewhere (the CLI's
/// token, the test suite's backend choice): not reported as unknown.
const OTHER_GEWE_VARIABLES: &[&str] = &["GEWE_TOKEN"];
const OTHER_GEWE_PREFIXES: &[&str] = &["GEWE_TEST_"];

/// Every settings key, lower case as a file writes it.
pub fn known_keys() -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = KEYS_NOT_IN_DEFAULTS.iter().map(|k| k.to_string()).collect();
    if let Ok(data) = Serialized::defaults(Settings::default()).data() {
        for dict in data.values() {
            keys.extend(dict.keys().cloned());
        }
    }
    keys
}

/// The known key nearest to `key`, if one is near enough to be a typo.
fn nearest<'a>(key: &str, known: &'a BTreeSet<String>) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.as_str())
}

fn refused(message: impl Into<String>) -> Box<figment::Error> {
    Box::new(figment::Error::from(message.into()))
}

/// Refuses keys of the settings file that are no setting: environment names
/// (`GEWE_LISTEN`), upper case (`LISTEN`), typos (`listn`) and tables
/// (`[fetch]`), each named with the key meant.
fn check_file_keys(path: &Path) -> Result<(), Box<figment::Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        refused(format!(
            "cannot read the settings file {} (--config): {e}",
            path.display()
        ))
    })?;
    let data = Toml::string(&text)
        .data()
        .map_err(|e| refused(format!("{} is not valid TOML: {e}", path.display())))?;
    let known = known_keys();
    let problems: Vec<String> = data
        .values()
        .flat_map(|dict| dict.iter())
        .filter(|(key, _)| !known.contains(key.as_str()))
        .map(|(key, value)| misplaced_key(key, value, &known))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(refused(format!(
            "{}: {}",
            path.display(),
            problems.join("; ")
        )))
    }
}

fn misplaced_key(key: &str, value: &Value, known: &BTreeSet<String>) -> String {
    let lower = key.to_ascii_lowercase();
    let bare = lower.strip_prefix("gewe_").unwrap_or(&lower);
    if known.contains(bare) {
        return if bare != lower {
            format!(
                "`{key}` is the environment name: in a settings file write `{bare} = …` \
                 (lower case, without GEWE_)"
            )
        } else {
            format!("`{key}` is not a setting: keys are lower case, write `{bare} = …`")
        };
    }
    if let Value::Dict(_, inner) = value {
        let meant: Vec<String> = inner
            .keys()
            .map(|inside| {
                let flat = format!("{bare}_{}", inside.to_ascii_lowercase());
                match nearest(&flat, known) {
                    Some(near) => format!("`{key}.{inside}` (did you mean `{near}`?)"),
                    None => format!("`{key}.{inside}`"),
                }
            })
            .collect();
        return format!(
            "[{key}] is not a settings table: settings are top-level keys, written above \
             any table; found {}",
            meant.join(", ")
        );
    }
    match nearest(bare, known) {
        Some(near) => format!("`{key}` is not a setting; did you mean `{near}`?"),
        None => format!("`{key}` is not a setting (see the settings table in the README)"),
    }
}

/// How the user wrote `key`, judging by where its value came from.
fn name_in(metadata: Option<&Metadata>, key: &str) -> String {
    let env = format!("GEWE_{}", key.to_ascii_uppercase());
    let Some(metadata) = metadata else {
        return env;
    };
    if let Some(path) = metadata.source.as_ref().and_then(|s| s.file_path()) {
        return format!("{key} (in {})", path.display());
    }
    if metadata.name.contains("Overrides") {
        return format!("--{}", key.replace('_', "-"));
    }
    env
}

fn written(figment: &Figment, key: &str) -> String {
    name_in(figment.find_metadata(key), key)
}

/// A figment error in the user's words: `GEWE_IMAGE_MAX_SIDE: …`, not
/// `… for key "default.image_max_side" in `GEWE_` environment variable(s)`.
fn in_plain_words(err: figment::Error) -> Box<figment::Error> {
    let lines: Vec<String> = err
        .into_iter()
        .map(|e| {
            let what = e.kind.to_string();
            match e.path.first() {
                Some(key) => {
                    let name = name_in(e.metadata.as_ref(), key);
                    let env = format!("GEWE_{}", key.to_ascii_uppercase());
                    if what.starts_with(&name) || what.starts_with(&env) {
                        what
                    } else {
                        format!("{name}: {what}")
                    }
                }
                None => what,
            }
        })
        .collect();
    refused(lines.join("; "))
}

/// `GEWE_*` variables that are no setting, each with the one probably meant.
/// They are not refused (other tools share the prefix); `gewe serve` warns.
pub fn unknown_environment() -> Vec<String> {
    let known = known_keys();
    let mut unknown: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("GEWE_"))
        .filter(|name| !OTHER_GEWE_VARIABLES.contains(&name.as_str()))
        .filter(|name| !OTHER_GEWE_PREFIXES.iter().any(|p| name.starts_with(p)))
        .filter_map(|name| {
            let key = name["GEWE_".len()..].to_ascii_lowercase();
            if known.contains(&key) {
                return None;
            }
            Some(match nearest(&key, &known) {
                Some(near) => format!("{name} (did you mean GEWE_{}?)", near.to_ascii_uppercase()),
                None => name,
            })
        })
        .collect();
    unknown.sort();
    unknown
}

impl Settings {
    pub fn load(
        config_file: Option<&Path>,
        overrides: &Overrides,
    ) -> Result<Settings, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = config_file {
            check_file_keys(path)?;
            figment = figment.merge(Toml::file_exact(path));
        }
        let figment = figment
            .merge(Env::prefixed("GEWE_"))
            .merge(Serialized::defaults(overrides));
        // The storage keys first, on their own: inside the flattened `storage`
        // field a wrongly typed value (`GEWE_S3_PATH_STYLE=maybe`) would lose
        // the name of its key.
        let storage_keys: StorageKeys = figment.extract().map_err(in_plain_words)?;
        Storage::try_from(storage_keys).map_err(refused)?;
        let mut settings: Settings = figment.extract().map_err(in_plain_words)?;
        settings.check_meaning(&figment)?;
        if let Some(path) = config_file {
            settings.resolve_relative_to(path, &figment);
        }
        Ok(settings)
    }

    /// Values that have the right type but no sense: a limit of 0 that would
    /// refuse every picture or stop every request, a retry cap below its base.
    fn check_meaning(&self, figment: &Figment) -> Result<(), Box<figment::Error>> {
        let d = Settings::default();
        let above_zero: [(&str, i128, i128); 19] = [
            (
                "database_max_connections",
                self.database_max_connections.into(),
                d.database_max_connections.into(),
            ),
            (
                "fetch_connect_timeout_ms",
                self.fetch_connect_timeout_ms.into(),
                d.fetch_connect_timeout_ms.into(),
            ),
            (
                "fetch_timeout_ms",
                self.fetch_timeout_ms.into(),
                d.fetch_timeout_ms.into(),
            ),
            (
                "fetch_max_bytes",
                self.fetch_max_bytes.into(),
                d.fetch_max_bytes.into(),
            ),
            (
                "image_max_side",
                self.image_max_side.into(),
                d.image_max_side.into(),
            ),
            (
                "image_max_pixels",
                self.image_max_pixels.into(),
                d.image_max_pixels.into(),
            ),
            (
                "image_max_alloc",
                self.image_max_alloc.into(),
                d.image_max_alloc.into(),
            ),
            (
                "decode_queue_timeout_ms",
                self.decode_queue_timeout_ms.into(),
                d.decode_queue_timeout_ms.into(),
            ),
            (
                "process_timeout_ms",
                self.process_timeout_ms.into(),
                d.process_timeout_ms.into(),
            ),
            (
                "download_budget_bytes",
                self.download_budget_bytes.into(),
                d.download_budget_bytes.into(),
            ),
            (
                "header_timeout_ms",
                self.header_timeout_ms.into(),
                d.header_timeout_ms.into(),
            ),
            (
                "body_timeout_ms",
                self.body_timeout_ms.into(),
                d.body_timeout_ms.into(),
            ),
            (
                "login_qr_ttl_secs",
                self.login_qr_ttl_secs.into(),
                d.login_qr_ttl_secs.into(),
            ),
            (
                "callback_timeout_ms",
                self.callback_timeout_ms.into(),
                d.callback_timeout_ms.into(),
            ),
            (
                "callback_retry_base_secs",
                self.callback_retry_base_secs.into(),
                d.callback_retry_base_secs.into(),
            ),
            (
                "callback_retry_cap_secs",
                self.callback_retry_cap_secs.into(),
                d.callback_retry_cap_secs.into(),
            ),
            (
                "callback_max_age_secs",
                self.callback_max_age_secs.into(),
                d.callback_max_age_secs.into(),
            ),
            (
                "callback_concurrency",
                self.callback_concurrency as i128,
                d.callback_concurrency as i128,
            ),
            (
                "callback_poll_ms",
                self.callback_poll_ms.into(),
                d.callback_poll_ms.into(),
            ),
        ];
        let mut problems: Vec<String> = above_zero
            .iter()
            .filter(|(_, value, _)| *value <= 0)
            .map(|(key, value, default)| {
                format!(
                    "{} is {value}: it must be above 0 (the default is {default})",
                    written(figment, key)
                )
            })
            .collect();
        if self.callback_retry_cap_secs < self.callback_retry_base_secs {
            problems.push(format!(
                "{} ({}) is below {} ({}): the longest delay cannot be shorter than the first",
                written(figment, "callback_retry_cap_secs"),
                self.callback_retry_cap_secs,
                written(figment, "callback_retry_base_secs"),
                self.callback_retry_base_secs
            ));
        }
        for (key, url) in [
            ("public_url", &self.public_url),
            ("avatar_redirect_base", &self.avatar_redirect_base),
        ] {
            if let Some(url) = url
                && !matches!(url.scheme(), "http" | "https")
            {
                problems.push(format!(
                    "{} is {url}: it must be an http:// or https:// address",
                    written(figment, key)
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(refused(problems.join("; ")))
        }
    }

    /// Relative paths written in the settings file mean "next to the file",
    /// wherever the command runs from.
    fn resolve_relative_to(&mut self, file: &Path, figment: &Figment) {
        let folder = file.parent().unwrap_or(Path::new(""));
        let from_file = |key: &str| {
            figment
                .find_metadata(key)
                .and_then(|m| m.source.as_ref())
                .and_then(|s| s.file_path())
                .is_some()
        };
        if from_file("data_dir") && self.data_dir.is_relative() {
            self.data_dir = folder.join(&self.data_dir);
        }
        if from_file("database_url")
            && let Some(url) = &self.database_url
            && let Some(rest) = url.expose_secret().strip_prefix("sqlite://")
            && !rest.is_empty()
            && !rest.starts_with(':')
            && Path::new(rest).is_relative()
        {
            let path = folder.join(rest);
            self.database_url = Some(format!("sqlite://{}", path.display()).into());
        }
    }

    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_millis(self.header_timeout_ms.max(1)),
            body_timeout: Duration::from_millis(self.body_timeout_ms.max(1)),
            max_connections: (self.max_connections > 0).then_some(self.max_connections),
            http_threads: match self.http_threads {
                0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
                threads => threads,
            },
            shutdown_grace: Duration::from_millis(self.shutdown_grace_ms),
        }
    }

    pub fn database_url(&self) -> DatabaseUrl {
        self.database_url.clone().unwrap_or_else(|| {
            format!("sqlite://{}", self.data_dir.join("gewe.db").display()).into()
        })
    }

    pub fn blob_dir(&self) -> PathBuf {
        self.data_dir.join("blobs")
    }

    /// The configured public URL, or one derived from the address actually bound.
    pub fn public_url_for(&self, bound: SocketAddr) -> Url {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let host = match bound.ip() {
            ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip => ip,
        };
        let authority = SocketAddr::new(host, bound.port());
        Url::parse(&format!("http://{authority}")).expect("a socket address makes a valid URL")
    }

    pub fn fetch_config(&self) -> FetchConfig {
        FetchConfig {
            allow_nets: self.fetch_allow_nets.clone(),
            connect_timeout: Duration::from_millis(self.fetch_connect_timeout_ms),
            total_timeout: Duration::from_millis(self.fetch_timeout_ms),
            max_bytes: self.fetch_max_bytes,
            max_redirects: self.fetch_max_redirects,
        }
    }

    pub fn login_config(&self) -> LoginConfig {
        LoginConfig {
            qr_ttl_secs: i64::from(self.login_qr_ttl_secs.max(1)),
            scan: self.login_scan,
            captcha: self
                .login_captcha
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
        }
    }

    /// The callback allow list in force: the setting, or loopback while
    /// listening on loopback only.
    pub fn callback_allow_nets(&self) -> Vec<IpNet> {
        match &self.callback_allow_nets {
            Some(nets) => nets.clone(),
            None if self.listen.ip().is_loopback() => vec![
                "127.0.0.0/8".parse().expect("a network"),
                "::1/128".parse().expect("a network"),
            ],
            None => Vec::new(),
        }
    }

    /// The callback sender's limits: its own allow list, no redirects, a
    /// small body cap, one time limit for connect and answer.
    pub fn callback_fetch_config(&self) -> FetchConfig {
        let limit = Duration::from_millis(self.callback_timeout_ms);
        FetchConfig {
            allow_nets: self.callback_allow_nets(),
            connect_timeout: limit,
            total_timeout: limit,
            max_bytes: CALLBACK_MAX_RESPONSE_BYTES,
            max_redirects: 0,
        }
    }

    /// The garbage collector's grace period, refused unless it is longer than
    /// the processing deadline (an update in flight must never be robbed).
    pub fn gc_grace(&self) -> Result<Duration, String> {
        let grace = Duration::from_secs(self.gc_grace_secs);
        let deadline = Duration::from_millis(self.process_timeout_ms);
        if grace <= deadline {
            return Err(format!(
                "GEWE_GC_GRACE_SECS ({} s) must be longer than GEWE_PROCESS_TIMEOUT_MS ({} ms): \
                 a blob younger than the processing deadline may belong to an update in flight",
                self.gc_grace_secs, self.process_timeout_ms
            ));
        }
        Ok(grace)
    }

    pub fn avatar_config(&self) -> AvatarUpdaterConfig {
        let defaults = AvatarUpdaterConfig::default();
        AvatarUpdaterConfig {
            limits: ImageLimits {
                max_side: self.image_max_side,
                max_pixels: self.image_max_pixels,
                max_alloc: self.image_max_alloc,
            },
            decode_slots: if self.decode_slots == 0 {
                defaults.decode_slots
            } else {
                self.decode_slots
            },
            queue_timeout: Duration::from_millis(self.decode_queue_timeout_ms),
            process_timeout: Duration::from_millis(self.process_timeout_ms),
            change_limit: self.avatar_change_limit,
            download_permits: usize::try_from(
                self.download_budget_bytes / self.fetch_max_bytes.max(1),
            )
            .unwrap_or(usize::MAX)
            .max(1),
            max_upload_bytes: self.fetch_max_bytes,
        }
    }
}

/// A listen address: `IP:PORT`, or `HOST:PORT` resolved now (an IPv4 address
/// first, so `localhost:2531` is `127.0.0.1:2531`).
pub fn resolve_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not HOST:PORT, e.g. 127.0.0.1:2531"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{text:?}: {port:?} is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host:?} of {text:?}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{host:?} of {text:?} resolves to no address"))
}

fn listen_addr<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    resolve_listen(&text).map_err(serde::de::Error::custom)
}

/// A boolean as people write it: `true`/`false`, `yes`/`no`, `on`/`off`,
/// `1`/`0`, in any case. For any boolean setting: `#[serde(deserialize_with =
/// "crate::config::flexible_bool")]`.
pub fn flexible_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bool(bool),
        Number(i64),
        Text(String),
    }
    let refuse = |shown: String| {
        serde::de::Error::custom(format!(
            "{shown} is not a boolean: write true/false, yes/no, on/off or 1/0"
        ))
    };
    match Raw::deserialize(deserializer)? {
        Raw::Bool(b) => Ok(b),
        Raw::Number(1) => Ok(true),
        Raw::Number(0) => Ok(false),
        Raw::Number(n) => Err(refuse(n.to_string())),
        Raw::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
            "1" | "yes" | "true" | "on" => Ok(true),
            "0" | "no" | "false" | "off" => Ok(false),
            _ => Err(refuse(format!("{text:?}"))),
        },
    }
}

pub fn optional_flexible_bool<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    struct Flexible(#[serde(deserialize_with = "flexible_bool")] bool);
    Ok(Option::<Flexible>::deserialize(deserializer)?.map(|f| f.0))
}

/// `"N/S"`; a bare number (`5`, which the environment reads as an integer)
/// is refused with how to write it.
fn optional_change_limit<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ChangeLimit>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(i64),
        Text(String),
    }
    match Option::<Raw>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Raw::Text(text)) => text.parse().map(Some).map_err(serde::de::Error::custom),
        Some(Raw::Number(n)) => Err(serde::de::Error::custom(format!(
            "{n} alone is not a limit: write it as N/S, at most N changes in S seconds, \
             e.g. \"{n}/3600\""
        ))),
    }
}

/// A code written as text or, by the environment's parser, as a number (`1234`).
fn optional_code<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Code {
        Text(String),
        Number(i64),
    }
    Ok(
        Option::<Code>::deserialize(deserializer)?.map(|code| match code {
            Code::Text(text) => text,
            Code::Number(n) => n.to_string(),
        }),
    )
}

fn optional_nets<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<IpNet>>, D::Error> {
    nets_from_list_or_string(deserializer).map(Some)
}

/// Accepts `["10.0.0.0/8", …]` from TOML and `"10.0.0.0/8,127.0.0.0/8"` from the environment.
fn nets_from_list_or_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Nets {
        List(Vec<String>),
        Text(String),
    }
    let items = match Nets::deserialize(deserializer)? {
        Nets::List(items) => items,
        Nets::Text(text) => text.split(',').map(str::to_owned).collect(),
    };
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| serde::de::Error::custom(format!("not a network in CIDR form: {s:?}")))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("gewe.toml", "listen = \"127.0.0.1:9000\"\ntoken_issuing = \"off\"\nfetch_allow_nets = [\"10.0.0.0/8\"]")?;
            jail.set_env("GEWE_LISTEN", "127.0.0.1:9001");
            jail.set_env("GEWE_FETCH_ALLOW_NETS", "127.0.0.0/8, ::1");
            let from_env = Settings::load(Some(Path::new("gewe.toml")), &Overrides::default())
                .map_err(|e| *e)?;
            assert_eq!(from_env.listen.port(), 9001);
            assert_eq!(from_env.token_issuing, Some(TokenIssuing::Off));
            assert_eq!(from_env.fetch_allow_nets.len(), 2);

            let flags = Overrides {
                listen: Some("127.0.0.1:9002".parse().unwrap()),
                ..Overrides::default()
            };
            let from_flags =
                Settings::load(Some(Path::new("gewe.toml")), &flags).map_err(|e| *e)?;
            assert_eq!(from_flags.listen.port(), 9002);
            Ok(())
        });
    }

    fn load_error(jail_env: &[(&str, &str)], toml: Option<&str>) -> String {
        let mut message = None;
        figment::Jail::expect_with(|jail| {
            for (name, value) in jail_env {
                jail.set_env(name, value);
            }
            let file = match toml {
                Some(text) => {
                    jail.create_file("gewe.toml", text)?;
                    Some(Path::new("gewe.toml"))
                }
                None => None,
            };
            let err = Settings::load(file, &Overrides::default())
                .expect_err("these settings must be refused");
            message = Some(err.to_string());
            Ok(())
        });
        message.expect("jail ran")
    }

    #[test]
    fn token_issuing_takes_the_three_modes_and_refuses_the_old_booleans() {
        figment::Jail::expect_with(|jail| {
            let defaults = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            assert_eq!(defaults.token_issuing, None);
            for (text, mode) in [
                ("instance", TokenIssuing::Instance),
                ("per-call", TokenIssuing::PerCall),
                ("off", TokenIssuing::Off),
            ] {
                jail.set_env("GEWE_TOKEN_ISSUING", text);
                let loaded = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
                assert_eq!(loaded.token_issuing, Some(mode));
            }
            Ok(())
        });
        for old in ["true", "false"] {
            let message = load_error(&[("GEWE_TOKEN_ISSUING", old)], None);
            assert!(
                message.contains("instance, per-call or off"),
                "{old}: {message}"
            );
        }
        let message = load_error(&[], Some("token_issuing = true"));
        assert!(message.contains("instance, per-call or off"), "{message}");
    }

    #[test]
    fn login_settings_read_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            let defaults = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            assert_eq!(defaults.login_config().qr_ttl_secs, 240);
            assert_eq!(defaults.login_config().scan, ScanMode::Auto);
            assert_eq!(defaults.login_config().captcha, None);
            jail.set_env("GEWE_LOGIN_QR_TTL_SECS", "60");
            jail.set_env("GEWE_LOGIN_SCAN", "manual");
            jail.set_env("GEWE_LOGIN_CAPTCHA", "4321");
            let set = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            assert_eq!(set.login_config().qr_ttl_secs, 60);
            assert_eq!(set.login_config().scan, ScanMode::Manual);
            assert_eq!(set.login_config().captcha.as_deref(), Some("4321"));
            Ok(())
        });
    }

    #[test]
    fn s3_storage_comes_from_flat_environment_names() {
        figment::Jail::expect_with(|jail| {
            let local = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            assert_eq!(local.storage, Storage::Local);

            jail.set_env("GEWE_STORAGE", "s3");
            jail.set_env("GEWE_S3_BUCKET", "avatars");
            let bare = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            assert_eq!(
                bare.storage,
                Storage::S3(S3Config {
                    bucket: "avatars".into(),
                    region: None,
                    endpoint: None,
                    path_style: false,
                })
            );

            jail.set_env("GEWE_S3_REGION", "eu-central-1");
            jail.set_env("GEWE_S3_ENDPOINT", "http://127.0.0.1:9000");
            jail.set_env("GEWE_S3_PATH_STYLE", "true");
            jail.set_env("GEWE_AVATAR_REDIRECT_BASE", "https://cdn.example.com/a");
            let s3 = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            assert_eq!(
                s3.storage,
                Storage::S3(S3Config {
                    bucket: "avatars".into(),
                    region: Some("eu-central-1".into()),
                    endpoint: Some(Url::parse("http://127.0.0.1:9000").unwrap()),
                    path_style: true,
                })
            );
            assert_eq!(
                s3.avatar_redirect_base.unwrap().as_str(),
                "https://cdn.example.com/a"
            );
            Ok(())
        });
    }

    #[test]
    fn s3_storage_comes_from_toml_keys() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "gewe.toml",
                "storage = \"s3\"\ns3_bucket = \"avatars\"\ns3_path_style = true",
            )?;
            let s3 = Settings::load(Some(Path::new("gewe.toml")), &Overrides::default())
                .map_err(|e| *e)?;
            assert_eq!(
                s3.storage,
                Storage::S3(S3Config {
                    bucket: "avatars".into(),
                    region: None,
                    endpoint: None,
                    path_style: true,
                })
            );
            // The environment still wins over the file, key by key.
            jail.set_env("GEWE_S3_BUCKET", "other");
            let s3 = Settings::load(Some(Path::new("gewe.toml")), &Overrides::default())
                .map_err(|e| *e)?;
            assert!(matches!(s3.storage, Storage::S3(c) if c.bucket == "other" && c.path_style));
            Ok(())
        });
    }

    #[test]
    fn s3_without_a_bucket_is_refused_at_load() {
        let msg = load_error(&[("GEWE_STORAGE", "s3")], None);
        assert_eq!(
            msg,
            "GEWE_STORAGE=s3 needs GEWE_S3_BUCKET (the bucket name)"
        );
        let msg = load_error(&[("GEWE_STORAGE", "s3"), ("GEWE_S3_BUCKET", "  ")], None);
        assert!(msg.contains("needs GEWE_S3_BUCKET"), "{msg}");
        let msg = load_error(&[], Some("storage = \"s3\"\ns3_region = \"eu-central-1\""));
        assert!(msg.contains("needs GEWE_S3_BUCKET"), "{msg}");
    }

    #[test]
    fn an_empty_s3_region_is_refused_at_load() {
        let msg = load_error(
            &[
                ("GEWE_STORAGE", "s3"),
                ("GEWE_S3_BUCKET", "avatars"),
                ("GEWE_S3_REGION", ""),
            ],
            None,
        );
        assert!(msg.starts_with("GEWE_S3_REGION is empty"), "{msg}");
    }

    #[test]
    fn s3_settings_with_local_storage_are_refused_at_load() {
        let msg = load_error(&[("GEWE_S3_BUCKET", "avatars")], None);
        assert_eq!(
            msg,
            "GEWE_S3_BUCKET given, but GEWE_STORAGE is local (the default): \
             S3 settings need GEWE_STORAGE=s3"
        );
        let msg = load_error(
            &[
                ("GEWE_STORAGE", "local"),
                ("GEWE_S3_ENDPOINT", "http://127.0.0.1:9000"),
                ("GEWE_S3_PATH_STYLE", "false"),
            ],
            None,
        );
        assert_eq!(
            msg,
            "GEWE_S3_ENDPOINT, GEWE_S3_PATH_STYLE given, but GEWE_STORAGE is local: \
             S3 settings need GEWE_STORAGE=s3"
        );
        let msg = load_error(&[], Some("s3_region = \"eu-central-1\""));
        assert!(msg.starts_with("GEWE_S3_REGION given"), "{msg}");
    }

    #[test]
    fn an_unknown_storage_kind_is_refused_at_load() {
        let msg = load_error(&[("GEWE_STORAGE", "ftp")], None);
        assert_eq!(
            msg,
            "GEWE_STORAGE=\"ftp\" is not a storage kind: use \"local\" or \"s3\""
        );
        let msg = load_error(&[], Some("storage = \"S3\""));
        assert!(msg.starts_with("GEWE_STORAGE=\"S3\" is not"), "{msg}");
    }

    #[test]
    fn a_wrongly_typed_storage_value_names_its_key() {
        let msg = load_error(
            &[
                ("GEWE_STORAGE", "s3"),
                ("GEWE_S3_BUCKET", "avatars"),
                ("GEWE_S3_PATH_STYLE", "maybe"),
            ],
            None,
        );
        assert!(
            msg.contains("S3_PATH_STYLE") && msg.contains("GEWE_"),
            "{msg}"
        );
        let msg = load_error(
            &[
                ("GEWE_STORAGE", "s3"),
                ("GEWE_S3_BUCKET", "avatars"),
                ("GEWE_S3_ENDPOINT", "not a url"),
            ],
            None,
        );
        assert!(
            msg.contains("S3_ENDPOINT") && msg.contains("GEWE_"),
            "{msg}"
        );
    }

    #[test]
    fn storage_survives_being_a_settings_layer() {
        // `Settings` serialises back to the flat keys it is read from, so a
        // `Settings` value can itself be the bottom layer of a figment.
        for storage in [
            Storage::Local,
            Storage::S3(S3Config {
                bucket: "avatars".into(),
                region: Some("eu-central-1".into()),
                endpoint: Some(Url::parse("http://127.0.0.1:9000").unwrap()),
                path_style: true,
            }),
        ] {
            let settings = Settings {
                storage: storage.clone(),
                ..Settings::default()
            };
            let back: Settings = Figment::from(Serialized::defaults(settings))
                .extract()
                .expect("round trip");
            assert_eq!(back.storage, storage);
        }
    }

    #[test]
    fn database_url_shows_scheme_host_and_database_only() {
        let shown = |url: &str| DatabaseUrl::from(url).to_string();
        assert_eq!(
            shown("postgres://gewe:s3cret@db.internal:5432/gewe"),
            "postgres://db.internal:5432/gewe"
        );
        assert_eq!(
            shown("postgres://gewe@db.internal/gewe?sslmode=require"),
            "postgres://db.internal/gewe"
        );
        assert_eq!(
            shown("sqlite://./gewe-data/gewe.db"),
            "sqlite://./gewe-data/gewe.db"
        );
        assert_eq!(shown("sqlite::memory:"), "sqlite::memory:");
    }

    #[test]
    fn database_url_hides_a_password_in_the_query() {
        let url = "postgres://gewe@db.internal/gewe?sslmode=require&password=s3cret#s3cret";
        assert_eq!(
            DatabaseUrl::from(url).to_string(),
            "postgres://db.internal/gewe"
        );
        let url = "postgres:///gewe?host=/run/postgresql&password=s3cret";
        assert_eq!(DatabaseUrl::from(url).to_string(), "postgres:///gewe");
    }

    #[test]
    fn database_url_that_does_not_parse_shows_only_its_scheme() {
        let shown = |url: &str| DatabaseUrl::from(url).to_string();
        // `#` ends the authority early: "gewe:s3" would be host and port.
        assert_eq!(
            shown("postgres://gewe:s3#cret@db.internal/gewe"),
            "postgres:<unparseable>"
        );
        assert_eq!(
            shown("postgres://gewe:s3cret@db.internal:port/gewe"),
            "postgres:<unparseable>"
        );
        assert_eq!(shown("host=db user=gewe password=s3cret"), "<unparseable>");
        assert_eq!(shown("s3cret"), "<unparseable>");
        assert_eq!(shown(""), "<unparseable>");
    }

    #[test]
    fn database_url_with_an_at_sign_after_the_host_shows_only_its_scheme() {
        let shown = |url: &str| DatabaseUrl::from(url).to_string();
        // An unescaped `/`, `?` or `#` in the password makes its start look like
        // host and port, and its end like the path, query or fragment.
        assert_eq!(
            shown("postgres://gewe:12/s3cret@db.internal/gewe"),
            "postgres:<hidden>"
        );
        assert_eq!(
            shown("postgres://gewe:12?s3cret@db.internal/gewe"),
            "postgres:<hidden>"
        );
        assert_eq!(
            shown("postgres://gewe:12#s3cret@db.internal/gewe"),
            "postgres:<hidden>"
        );
        assert_eq!(
            shown("postgres:gewe:s3cret@db.internal/gewe"),
            "postgres:<hidden>"
        );
        // An unescaped `@` in the password itself is no trouble: the last one counts.
        assert_eq!(
            shown("postgres://gewe:s3@cret@db.internal/gewe"),
            "postgres://db.internal/gewe"
        );
    }

    #[test]
    fn database_password_stays_out_of_debug_output() {
        let url = "postgres://gewe:s3cret@db.internal:5432/gewe?password=s3cret";
        let settings = Settings {
            database_url: Some(url.into()),
            ..Settings::default()
        };
        let debug = format!("{settings:?} {settings:#?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("db.internal"), "{debug}");
        let overrides = Overrides {
            database_url: Some(url.into()),
            ..Overrides::default()
        };
        assert!(!format!("{overrides:?}").contains("s3cret"));
        // The driver still gets every byte.
        assert_eq!(settings.database_url().expose_secret(), url);
    }

    #[test]
    fn database_url_comes_through_every_layer_intact() {
        figment::Jail::expect_with(|jail| {
            let url = "postgres://gewe:s3cret@db.internal/gewe";
            jail.set_env("GEWE_DATABASE_URL", url);
            let settings = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            assert_eq!(settings.database_url().expose_secret(), url);
            let flag = Overrides {
                database_url: Some("sqlite://flag.db".into()),
                ..Overrides::default()
            };
            let settings = Settings::load(None, &flag).map_err(|e| *e)?;
            assert_eq!(settings.database_url().expose_secret(), "sqlite://flag.db");
            Ok(())
        });
    }

    #[test]
    fn bad_networks_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("GEWE_FETCH_ALLOW_NETS", "not-a-net");
            assert!(Settings::load(None, &Overrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn avatar_change_limit_is_off_by_default_and_read_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            let defaults = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            assert_eq!(defaults.avatar_change_limit, None);
            assert_eq!(defaults.avatar_config().change_limit, None);

            jail.set_env("GEWE_AVATAR_CHANGE_LIMIT", "5/3600");
            let limited = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            let limit = ChangeLimit {
                max: 5,
                window_secs: 3600,
            };
            assert_eq!(limited.avatar_change_limit, Some(limit));
            assert_eq!(limited.avatar_config().change_limit, Some(limit));

            for bad in ["5", "0/60", "5/0", "five/3600", "5/-1"] {
                jail.set_env("GEWE_AVATAR_CHANGE_LIMIT", bad);
                assert!(
                    Settings::load(None, &Overrides::default()).is_err(),
                    "{bad}"
                );
            }
            Ok(())
        });
    }

    #[test]
    fn callbacks_may_reach_loopback_only_while_listening_on_loopback() {
        figment::Jail::expect_with(|jail| {
            let local = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            assert_eq!(local.callback_allow_nets().len(), 2);
            assert_eq!(local.callback_fetch_config().max_redirects, 0);
            jail.set_env("GEWE_LISTEN", "0.0.0.0:2531");
            let open = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            assert!(open.callback_allow_nets().is_empty());
            jail.set_env("GEWE_CALLBACK_ALLOW_NETS", "10.0.0.0/8");
            let set = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            assert_eq!(
                set.callback_allow_nets(),
                vec!["10.0.0.0/8".parse::<IpNet>().unwrap()]
            );
            jail.set_env("GEWE_LISTEN", "127.0.0.1:2531");
            jail.set_env("GEWE_CALLBACK_ALLOW_NETS", "");
            let none = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            assert!(none.callback_allow_nets().is_empty());
            Ok(())
        });
    }

    #[test]
    fn every_field_is_a_known_key() {
        let known = known_keys();
        for key in [
            "listen",
            "data_dir",
            "database_url",
            "avatar_redirect_base",
            "public_url",
            "token_issuing",
            "avatar_change_limit",
            "login_captcha",
            "callback_allow_nets",
            "s3_path_style",
            "callback_concurrency",
        ] {
            assert!(known.contains(key), "{key} missing from {known:?}");
        }
        assert!(!known.contains("default"), "{known:?}");
    }

    #[test]
    fn file_keys_that_are_no_setting_are_refused_naming_the_one_meant() {
        let msg = load_error(&[], Some("LISTEN = \"127.0.0.1:9000\""));
        assert!(
            msg.contains("`LISTEN`") && msg.contains("`listen = …`"),
            "{msg}"
        );
        let msg = load_error(&[], Some("GEWE_LISTEN = \"127.0.0.1:9000\""));
        assert!(
            msg.contains("`GEWE_LISTEN` is the environment name") && msg.contains("`listen = …`"),
            "{msg}"
        );
        let msg = load_error(&[], Some("listn = \"127.0.0.1:9000\""));
        assert!(
            msg.contains("`listn` is not a setting; did you mean `listen`?"),
            "{msg}"
        );
        let msg = load_error(
            &[],
            Some("listen = \"127.0.0.1:9000\"\n[fetch]\ntimeout_ms = 5"),
        );
        assert!(
            msg.contains("[fetch] is not a settings table")
                && msg.contains("`fetch.timeout_ms` (did you mean `fetch_timeout_ms`?)"),
            "{msg}"
        );
        // A known key after a stray table lands inside it: refused, not ignored.
        let msg = load_error(&[], Some("[server]\nlisten = \"127.0.0.1:9000\""));
        assert!(msg.contains("`server.listen`"), "{msg}");
        assert!(msg.starts_with("gewe.toml: "), "{msg}");
    }

    #[test]
    fn values_without_sense_are_refused_naming_the_key_as_written() {
        let msg = load_error(&[("GEWE_IMAGE_MAX_SIDE", "0")], None);
        assert_eq!(
            msg,
            "GEWE_IMAGE_MAX_SIDE is 0: it must be above 0 (the default is 8192)"
        );
        let msg = load_error(&[], Some("fetch_timeout_ms = 0"));
        assert!(
            msg.starts_with("fetch_timeout_ms (in gewe.toml) is 0"),
            "{msg}"
        );
        let msg = load_error(&[], Some("fetch_timeout_ms = \"soon\""));
        assert!(
            msg.starts_with("fetch_timeout_ms (in gewe.toml): "),
            "{msg}"
        );
        assert!(!msg.contains("default."), "{msg}");
        let msg = load_error(
            &[
                ("GEWE_CALLBACK_RETRY_BASE_SECS", "60"),
                ("GEWE_CALLBACK_RETRY_CAP_SECS", "10"),
            ],
            None,
        );
        assert!(
            msg.starts_with(
                "GEWE_CALLBACK_RETRY_CAP_SECS (10) is below GEWE_CALLBACK_RETRY_BASE_SECS"
            ),
            "{msg}"
        );
        let msg = load_error(&[("GEWE_PUBLIC_URL", "ftp://x.example")], None);
        assert!(msg.starts_with("GEWE_PUBLIC_URL is ftp://"), "{msg}");
    }

    #[test]
    fn a_change_limit_without_a_window_says_how_to_write_it() {
        let msg = load_error(&[("GEWE_AVATAR_CHANGE_LIMIT", "5")], None);
        assert!(
            msg.starts_with("GEWE_AVATAR_CHANGE_LIMIT: ") && msg.contains("write it as N/S"),
            "{msg}"
        );
        let msg = load_error(&[], Some("avatar_change_limit = 5"));
        assert!(
            msg.starts_with("avatar_change_limit (in gewe.toml): ") && msg.contains("N/S"),
            "{msg}"
        );
        let msg = load_error(&[("GEWE_AVATAR_CHANGE_LIMIT", "5/0")], None);
        assert!(msg.contains("write it as N/S"), "{msg}");
    }

    #[test]
    fn booleans_take_the_usual_spellings() {
        for (text, want) in [
            ("1", true),
            ("0", false),
            ("yes", true),
            ("No", false),
            ("TRUE", true),
            ("false", false),
            ("on", true),
            ("Off", false),
        ] {
            figment::Jail::expect_with(|jail| {
                jail.set_env("GEWE_STORAGE", "s3");
                jail.set_env("GEWE_S3_BUCKET", "avatars");
                jail.set_env("GEWE_S3_PATH_STYLE", text);
                let settings = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
                assert!(
                    matches!(&settings.storage, Storage::S3(c) if c.path_style == want),
                    "{text}"
                );
                Ok(())
            });
        }
        let msg = load_error(
            &[
                ("GEWE_STORAGE", "s3"),
                ("GEWE_S3_BUCKET", "avatars"),
                ("GEWE_S3_PATH_STYLE", "2"),
            ],
            None,
        );
        assert!(
            msg.contains("write true/false, yes/no, on/off or 1/0"),
            "{msg}"
        );
    }

    #[test]
    fn relative_paths_in_a_file_mean_next_to_the_file() {
        figment::Jail::expect_with(|jail| {
            std::fs::create_dir("conf").map_err(|e| e.to_string())?;
            jail.create_file(
                "conf/gewe.toml",
                "data_dir = \"data\"\ndatabase_url = \"sqlite://db/gewe.db\"",
            )?;
            let settings = Settings::load(Some(Path::new("conf/gewe.toml")), &Overrides::default())
                .map_err(|e| *e)?;
            assert_eq!(settings.data_dir, Path::new("conf/data"));
            assert_eq!(
                settings.database_url().expose_secret(),
                "sqlite://conf/db/gewe.db"
            );
            // From the environment, a relative path stays relative to the working folder.
            jail.set_env("GEWE_DATA_DIR", "here");
            let settings = Settings::load(Some(Path::new("conf/gewe.toml")), &Overrides::default())
                .map_err(|e| *e)?;
            assert_eq!(settings.data_dir, Path::new("here"));
            Ok(())
        });
    }

    #[test]
    fn listen_takes_a_host_name() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("GEWE_LISTEN", "localhost:2600");
            let settings = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            assert!(settings.listen.ip().is_loopback(), "{}", settings.listen);
            assert_eq!(settings.listen.port(), 2600);
            Ok(())
        });
        assert_eq!(
            resolve_listen("localhost:2531").unwrap(),
            "127.0.0.1:2531".parse::<SocketAddr>().unwrap()
        );
        assert!(resolve_listen("localhost").is_err());
    }

    #[test]
    fn public_url_is_derived_from_the_bound_address() {
        let settings = Settings::default();
        let url = settings.public_url_for("0.0.0.0:2531".parse().unwrap());
        assert_eq!(url.as_str(), "http://127.0.0.1:2531/");
    }
}
