//! Settings, layered: command-line flags > `GEWE_*` environment > optional TOML
//! file (`--config`) > built-in defaults.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use crate::domain::{AvatarUpdaterConfig, ChangeLimit};
use crate::fetch::FetchConfig;
use crate::imaging::ImageLimits;
use crate::storage::S3Config;
pub use crate::telemetry::LogFormat;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where `gewe serve` listens; 2531 is the port self-hosted Gewechat uses.
    pub listen: SocketAddr,
    /// Holds the SQLite database and the blob folder unless configured otherwise.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to `sqlite://<data_dir>/gewe.db`.
    pub database_url: Option<String>,
    /// Where avatar blobs live: `local` (`<data_dir>/blobs`) or `s3`.
    pub storage: StorageKind,
    /// The bucket, with `storage = "s3"`; credentials come from the `AWS_*` environment.
    pub s3_bucket: Option<String>,
    /// Defaults to `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub s3_region: Option<String>,
    /// An S3-compatible service (MinIO, Ceph, R2, …); AWS itself when unset.
    pub s3_endpoint: Option<Url>,
    /// Path-style requests (`endpoint/bucket/key`), as MinIO-likes want; AWS's
    /// virtual-hosted style (`bucket.endpoint/key`) otherwise.
    pub s3_path_style: bool,
    /// When set, `/mmhead/<id>/<size>` redirects to `<base>/avatars/<id>/<size>.jpg`
    /// (a CDN or the bucket's public address) instead of streaming the bytes.
    pub avatar_redirect_base: Option<Url>,
    /// Base of the avatar links the server hands out; defaults to `http://<listen>`.
    pub public_url: Option<Url>,
    /// Whether `tools/getTokenId` issues tokens over HTTP.
    pub token_issuing: bool,
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
    /// Per-account avatar change limit, `"<changes>/<seconds>"` such as `"5/3600"`;
    /// unset (the default) means no limit.
    pub avatar_change_limit: Option<ChangeLimit>,
    /// `text` or `json`.
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    Local,
    S3,
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
            storage: StorageKind::Local,
            s3_bucket: None,
            s3_region: None,
            s3_endpoint: None,
            s3_path_style: false,
            avatar_redirect_base: None,
            public_url: None,
            token_issuing: true,
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
            avatar_change_limit: avatar.change_limit,
            log_format: LogFormat::Text,
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
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<Url>,
}

impl Settings {
    pub fn load(
        config_file: Option<&Path>,
        overrides: &Overrides,
    ) -> Result<Settings, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = config_file {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment
            .merge(Env::prefixed("GEWE_"))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(Box::new)
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("gewe.db").display()))
    }

    pub fn blob_dir(&self) -> PathBuf {
        self.data_dir.join("blobs")
    }

    /// The bucket settings, when blobs go to S3.
    pub fn s3_config(&self) -> Result<Option<S3Config>, String> {
        if self.storage != StorageKind::S3 {
            return Ok(None);
        }
        let bucket = self
            .s3_bucket
            .clone()
            .filter(|b| !b.trim().is_empty())
            .ok_or("GEWE_STORAGE=s3 needs GEWE_S3_BUCKET")?;
        Ok(Some(S3Config {
            bucket,
            region: self.s3_region.clone(),
            endpoint: self.s3_endpoint.clone(),
            path_style: self.s3_path_style,
        }))
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
        }
    }
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
            jail.create_file("gewe.toml", "listen = \"127.0.0.1:9000\"\ntoken_issuing = false\nfetch_allow_nets = [\"10.0.0.0/8\"]")?;
            jail.set_env("GEWE_LISTEN", "127.0.0.1:9001");
            jail.set_env("GEWE_FETCH_ALLOW_NETS", "127.0.0.0/8, ::1");
            let from_env = Settings::load(Some(Path::new("gewe.toml")), &Overrides::default())
                .map_err(|e| *e)?;
            assert_eq!(from_env.listen.port(), 9001);
            assert!(!from_env.token_issuing);
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

    #[test]
    fn s3_storage_comes_from_flat_environment_names() {
        figment::Jail::expect_with(|jail| {
            let local = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            assert_eq!(local.s3_config(), Ok(None));

            jail.set_env("GEWE_STORAGE", "s3");
            let missing = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            assert!(missing.s3_config().unwrap_err().contains("GEWE_S3_BUCKET"));

            jail.set_env("GEWE_S3_BUCKET", "avatars");
            jail.set_env("GEWE_S3_REGION", "eu-central-1");
            jail.set_env("GEWE_S3_ENDPOINT", "http://127.0.0.1:9000");
            jail.set_env("GEWE_S3_PATH_STYLE", "true");
            jail.set_env("GEWE_AVATAR_REDIRECT_BASE", "https://cdn.example.com/a");
            let s3 = Settings::load(None, &Overrides::default()).map_err(|e| *e)?;
            assert_eq!(
                s3.s3_config(),
                Ok(Some(S3Config {
                    bucket: "avatars".into(),
                    region: Some("eu-central-1".into()),
                    endpoint: Some(Url::parse("http://127.0.0.1:9000").unwrap()),
                    path_style: true,
                }))
            );
            assert_eq!(
                s3.avatar_redirect_base.unwrap().as_str(),
                "https://cdn.example.com/a"
            );

            jail.set_env("GEWE_STORAGE", "ftp");
            assert!(Settings::load(None, &Overrides::default()).is_err());
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
    fn public_url_is_derived_from_the_bound_address() {
        let settings = Settings::default();
        let url = settings.public_url_for("0.0.0.0:2531".parse().unwrap());
        assert_eq!(url.as_str(), "http://127.0.0.1:2531/");
    }
}
