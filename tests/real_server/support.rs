//! The real `gewe` binary as a child process: started on an ephemeral loopback
//! port (read back from its JSON log), killed with SIGKILL on drop.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use gewe_server::config::Settings;
use gewe_server::domain::{AccountDraft, Accounts, Clock};
use gewe_server::startup::{open_repo, open_storage};
use serde_json::{Value, json};

pub struct Server {
    child: Child,
    pub base: String,
    pub client: reqwest::Client,
}

impl Server {
    /// Starts `gewe serve` on `data_dir` (and, for pg-s3, on the database and
    /// bucket of `data_dir`); fetches may reach loopback only.
    pub async fn start(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Self::start_with_open_files(data_dir, env, None).await
    }

    /// Like `start`, with the process's hard (and soft) open-files limit set to
    /// `open_files`: the server can raise its soft limit only that far.
    pub async fn start_with_open_files(
        data_dir: &Path,
        env: &[(&str, &str)],
        open_files: Option<u64>,
    ) -> Server {
        let backend_env = backend_env(data_dir).await;
        let mut command = Command::new(env!("CARGO_BIN_EXE_gewe"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_remove("GEWE_DATABASE_URL")
            .env_remove("GEWE_PUBLIC_URL")
            .env_remove("GEWE_LISTEN")
            .env("GEWE_FETCH_ALLOW_NETS", "127.0.0.0/8")
            .env("GEWE_LOG_FORMAT", "json")
            .env("RUST_LOG", "info,sqlx=warn,hyper_util=warn")
            .envs(backend_env)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(limit) = open_files {
            // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command.spawn().expect("gewe serve starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads the log for the bound address, then keeps draining it so the
        // server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(sender) = &tx
                    && let Ok(entry) = serde_json::from_str::<Value>(&line)
                    && entry["fields"]["message"] == "gewe-server listening"
                {
                    let addr = entry["fields"]["addr"].as_str().unwrap_or_default();
                    let _ = sender.send(addr.to_owned());
                    tx = None;
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server logs its address");
        Server {
            child,
            base: format!("http://{addr}"),
            client: crate::helpers::http_client_builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `VmHWM` (peak resident set) of the server process, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status")
    }

    /// Asks the server to stop, as a service manager would (SIGTERM).
    pub fn terminate(&self) {
        let pid = libc::pid_t::try_from(self.pid()).unwrap();
        // SAFETY: sending a signal to our own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    }

    /// Waits up to `limit` for the process to exit; whether it did.
    pub fn exited_within(&mut self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGKILL, no goodbye.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub async fn call(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.header("X-GEWE-TOKEN", token);
        }
        let response = request.send().await.expect("server answers");
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON envelope")
    }

    pub async fn new_token(&self) -> String {
        let envelope = self.call("/v2/api/tools/getTokenId", None, json!({})).await;
        envelope["data"].as_str().unwrap().to_owned()
    }

    pub async fn update_head_img(&self, token: &str, app_id: &str, url: &str) -> Value {
        self.call(
            "/gewe/v2/api/personal/updateHeadImg",
            Some(token),
            json!({"appId": app_id, "headImgUrl": url}),
        )
        .await
    }

    pub async fn profile(&self, token: &str, app_id: &str) -> Value {
        let envelope = self
            .call(
                "/gewe/v2/api/personal/getProfile",
                Some(token),
                json!({"appId": app_id}),
            )
            .await;
        assert_eq!(envelope["ret"], 200, "{envelope}");
        envelope["data"].clone()
    }

    /// GET a URL the server handed out: status and body.
    pub async fn get(&self, url: &str) -> (u16, bytes::Bytes) {
        let response = self.client.get(url).send().await.expect("server answers");
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap())
    }

    pub async fn alive(&self) -> bool {
        matches!(
            self.client.get(format!("{}/healthz", self.base)).send().await,
            Ok(r) if r.status() == 200
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates `count` accounts owned by `token` directly in the data dir, the way
/// `gewe account create` does (safe while the server runs).
pub async fn create_accounts(data_dir: &Path, token: &str, count: usize) -> Vec<String> {
    let settings = settings(data_dir).await;
    let repo = open_repo(&settings).await.unwrap();
    let tokens = gewe_server::auth::Tokens::new(repo.clone(), Clock::system());
    let owner = tokens.authenticate(Some(token)).await.unwrap();
    let accounts = Accounts::new(repo, open_storage(&settings).unwrap(), Clock::system());
    let mut ids = Vec::new();
    for _ in 0..count {
        let account = accounts
            .create(owner, AccountDraft::default())
            .await
            .unwrap();
        ids.push(account.app_id.to_string());
    }
    ids
}

/// Settings that reach the data of `data_dir` in the test's backend: the folder
/// itself, or (pg-s3) its database and bucket, made at first use.
pub async fn settings(data_dir: &Path) -> Settings {
    let mut settings = Settings {
        data_dir: data_dir.to_path_buf(),
        ..Settings::default()
    };
    crate::services::configure(&mut settings, data_dir).await;
    settings
}

/// The `GEWE_*` environment pointing a `gewe` process at the data of `data_dir`
/// (empty for the local backend, where `--data-dir` says it all).
async fn backend_env(data_dir: &Path) -> Vec<(&'static str, String)> {
    // Makes the database and bucket on first use.
    settings(data_dir).await;
    crate::services::backend_env(data_dir)
}

/// The content id in `/mmhead/<id>/<size>`.
pub fn avatar_id(url: &str) -> String {
    url.split("/mmhead/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned()
}
