//! The backend every server in this test process runs on, chosen by
//! `GEWE_TEST_BACKEND`:
//!
//! - unset or `local`: SQLite and the blob folder, both in the test's data dir;
//! - `pg-s3`: PostgreSQL and S3. The first test that needs them starts, once per
//!   process, a throwaway PostgreSQL 15 cluster (initdb + pg_ctl, random port on
//!   127.0.0.1, temp dir) and a `moto_server`; each data dir then gets its own
//!   database and its own bucket. Both are stopped and removed when the process
//!   exits. `scripts/test-pg-s3` runs the suite this way; it needs `AWS_ACCESS_KEY_ID` /
//!   `AWS_SECRET_ACCESS_KEY` (any value; moto checks nothing) in the environment,
//!   where the server reads them.
//!
//! Overrides: `GEWE_TEST_PG_BIN` (PostgreSQL's bin dir), `GEWE_TEST_MOTO_SERVER`
//! (the `moto_server` program), `GEWE_TEST_RUN_DIR` (where the services' temp dir
//! goes; `scripts/test-pg-s3` sweeps it after the run, in case this process was
//! killed before it could stop them).

use std::collections::HashMap;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gewe_server::config::{Settings, Storage};
use gewe_server::storage::S3Config;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use sqlx::{Connection, Executor};
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    PgS3,
}

pub fn backend() -> Backend {
    match std::env::var("GEWE_TEST_BACKEND").as_deref() {
        Err(_) | Ok("") | Ok("local") => Backend::Local,
        Ok("pg-s3") => Backend::PgS3,
        Ok(other) => panic!("GEWE_TEST_BACKEND={other:?}: expected `local` or `pg-s3`"),
    }
}

/// A database and a bucket: what the instances sharing one data dir share.
#[derive(Debug, Clone)]
pub struct SharedData {
    pub database_url: String,
    pub bucket: String,
}

/// Data dir → its database and bucket, so a restarted or second instance given
/// the same data dir finds the same data, as it would in the local backend.
static SHARED: Mutex<Option<HashMap<PathBuf, SharedData>>> = Mutex::new(None);

/// Points `settings` at the data belonging to `data_dir`: the data dir itself for
/// the local backend; for pg-s3 a database and a bucket, made at first use.
pub async fn configure(settings: &mut Settings, data_dir: &Path) {
    let Some(shared) = shared_data(data_dir).await else {
        return;
    };
    let services = services();
    settings.database_url = Some(shared.database_url.into());
    settings.storage = Storage::S3(S3Config {
        bucket: shared.bucket,
        region: Some("us-east-1".to_owned()),
        endpoint: Some(Url::parse(&services.s3_endpoint).unwrap()),
        path_style: true,
    });
}

async fn shared_data(data_dir: &Path) -> Option<SharedData> {
    if backend() == Backend::Local {
        return None;
    }
    if let Some(found) = shared_data_of(data_dir) {
        return Some(found);
    }
    let services = services();
    let made = SharedData {
        database_url: services.create_database().await,
        bucket: services.create_bucket().await,
    };
    SHARED
        .lock()
        .unwrap()
        .get_or_insert_default()
        .insert(data_dir.to_owned(), made.clone());
    Some(made)
}

/// The database and bucket of `data_dir`, if it has them.
pub fn shared_data_of(data_dir: &Path) -> Option<SharedData> {
    SHARED
        .lock()
        .unwrap()
        .get_or_insert_default()
        .get(data_dir)
        .cloned()
}

/// The `GEWE_*` environment that points a `gewe` process (the CLI, `gewe serve`)
/// at the same data as the servers on `data_dir`; empty for the local backend,
/// where `--data-dir` says it all.
pub fn backend_env(data_dir: &Path) -> Vec<(&'static str, String)> {
    let Some(shared) = shared_data_of(data_dir) else {
        return Vec::new();
    };
    vec![
        ("GEWE_DATABASE_URL", shared.database_url),
        ("GEWE_STORAGE", "s3".to_owned()),
        ("GEWE_S3_BUCKET", shared.bucket),
        ("GEWE_S3_REGION", "us-east-1".to_owned()),
        ("GEWE_S3_ENDPOINT", services().s3_endpoint.clone()),
        ("GEWE_S3_PATH_STYLE", "true".to_owned()),
    ]
}

/// Avatar objects stored for `data_dir`: files in its blob folder, or objects in
/// its bucket.
pub fn blob_count(data_dir: &Path) -> usize {
    match shared_data_of(data_dir) {
        None => count_files(&data_dir.join("blobs")),
        // Callers are sync and inside a test's runtime: list on a thread of its own.
        Some(shared) => std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let store = services().s3_store(&shared.bucket, S3ConditionalPut::ETagMatch);
                    store.list(None).count().await
                })
        })
        .join()
        .unwrap(),
    }
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() { count_files(&path) } else { 1 }
                })
                .sum()
        })
        .unwrap_or(0)
}

pub struct Services {
    run_dir: PathBuf,
    pg_bin: PathBuf,
    pg_data: PathBuf,
    pg_port: u16,
    moto: Mutex<Option<Child>>,
    pub s3_endpoint: String,
}

static SERVICES: OnceLock<Services> = OnceLock::new();

/// The process's PostgreSQL cluster and S3 endpoint, started on first use.
pub fn services() -> &'static Services {
    SERVICES.get_or_init(|| {
        // reqwest (moto calls here, the S3 client in the server) finds its TLS
        // provider in the process; the server installs the same when it opens S3.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let services = Services::start();
        // SAFETY: registers a plain `extern "C" fn` with the C library.
        unsafe { atexit(stop_services) };
        services
    })
}

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> i32;
    fn geteuid() -> u32;
}

/// Runs when the test binary exits, pass or fail.
extern "C" fn stop_services() {
    if let Some(services) = SERVICES.get() {
        services.stop();
    }
}

impl Services {
    fn start() -> Services {
        assert!(
            std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
                && std::env::var_os("AWS_SECRET_ACCESS_KEY").is_some(),
            "GEWE_TEST_BACKEND=pg-s3 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
             (any value, e.g. `test`) in the environment; scripts/test-pg-s3 sets them"
        );
        let base = std::env::var_os("GEWE_TEST_RUN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let run_dir = base.join(format!(
            "gewe-services-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&run_dir).unwrap();
        set_mode(&run_dir, 0o755);

        let pg_bin = std::env::var_os("GEWE_TEST_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
        assert!(
            pg_bin.join("initdb").exists(),
            "no PostgreSQL at {} (install postgresql-15, or set GEWE_TEST_PG_BIN)",
            pg_bin.display()
        );
        let pg_dir = run_dir.join("pg");
        std::fs::create_dir_all(&pg_dir).unwrap();
        // initdb refuses to run as root: the cluster belongs to `postgres` then.
        if is_root() {
            let (uid, gid) = (id_of("-u"), id_of("-g"));
            std::os::unix::fs::chown(&pg_dir, Some(uid), Some(gid)).unwrap();
        }
        let pg_data = pg_dir.join("data");
        run(pg_command(&pg_bin, "initdb").args([
            "-D".as_ref(),
            pg_data.as_os_str(),
            "-U".as_ref(),
            "postgres".as_ref(),
            "--auth=trust".as_ref(),
            "--encoding=UTF8".as_ref(),
            "--locale=C".as_ref(),
            "--no-sync".as_ref(),
        ]));

        let mut services = Services {
            run_dir,
            pg_bin,
            pg_data,
            pg_port: 0,
            moto: Mutex::new(None),
            s3_endpoint: String::new(),
        };
        services.pg_port = services.start_postgres(&pg_dir);
        let (moto, endpoint) = services.start_moto();
        services.moto = Mutex::new(Some(moto));
        services.s3_endpoint = endpoint;
        services
    }

    /// A random free port can be taken between our look and the server's bind:
    /// try a few.
    fn start_postgres(&self, pg_dir: &Path) -> u16 {
        for _ in 0..5 {
            let port = free_port();
            let options = format!(
                "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 \
                 -c max_wal_size=256MB",
                pg_dir.display()
            );
            let status = pg_command(&self.pg_bin, "pg_ctl")
                .args(["-D".as_ref(), self.pg_data.as_os_str(), "-w".as_ref()])
                .args(["-t", "60", "-o", &options, "-l"])
                .arg(pg_dir.join("server.log"))
                .arg("start")
                .stdout(Stdio::null())
                .status()
                .expect("pg_ctl runs");
            if status.success() {
                return port;
            }
        }
        panic!(
            "PostgreSQL did not start; see {}",
            pg_dir.join("server.log").display()
        );
    }

    fn start_moto(&self) -> (Child, String) {
        let program = std::env::var_os("GEWE_TEST_MOTO_SERVER").unwrap_or("moto_server".into());
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(self.run_dir.join("moto.log")).unwrap();
            let mut child = Command::new(&program)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                // Its own process group, so stopping it stops whatever it started.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot run {program:?} ({e}); pip install 'moto[server]', \
                         or set GEWE_TEST_MOTO_SERVER"
                    )
                });
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    // For `scripts/test-pg-s3`'s sweep, should this process be killed.
                    std::fs::write(self.run_dir.join("moto.pid"), child.id().to_string()).unwrap();
                    return (child, format!("http://127.0.0.1:{port}"));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            stop_group(&mut child);
        }
        panic!(
            "moto_server did not start; see {}",
            self.run_dir.join("moto.log").display()
        );
    }

    fn stop(&self) {
        let _ = pg_command(&self.pg_bin, "pg_ctl")
            .args(["-D".as_ref(), self.pg_data.as_os_str()])
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut moto) = self.moto.lock().unwrap().take() {
            stop_group(&mut moto);
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.pg_port)
    }

    pub async fn create_database(&self) -> String {
        let name = format!("t_{:016x}", rand::random::<u64>());
        let mut admin = sqlx::PgConnection::connect(&self.admin_url())
            .await
            .expect("PostgreSQL answers");
        // FILE_COPY: the default (WAL_LOG) writes the whole template into the WAL
        // for every test database, hundreds of them per run.
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE {name} STRATEGY FILE_COPY"
            )))
            .await
            .unwrap();
        admin.close().await.unwrap();
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.pg_port)
    }

    /// A new bucket, publicly readable so redirects to it can be followed.
    pub async fn create_bucket(&self) -> String {
        let name = format!("t-{:016x}", rand::random::<u64>());
        let response = crate::helpers::http_client_builder()
            .build()
            .unwrap()
            .put(format!("{}/{name}", self.s3_endpoint))
            .header("x-amz-acl", "public-read")
            .send()
            .await
            .expect("moto answers");
        assert!(response.status().is_success(), "{response:?}");
        name
    }

    /// A client of `bucket` for tests that look into it directly.
    pub fn s3_store(
        &self,
        bucket: &str,
        conditional_put: S3ConditionalPut,
    ) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_region("us-east-1")
                .with_endpoint(&self.s3_endpoint)
                .with_allow_http(true)
                .with_conditional_put(conditional_put)
                .build()
                .unwrap(),
        )
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { geteuid() == 0 }
}

/// `initdb` / `pg_ctl`, as the `postgres` user when we are root.
fn pg_command(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(bin.join(program));
        command
    } else {
        Command::new(bin.join(program))
    }
}

fn id_of(flag: &str) -> u32 {
    let output = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "no `postgres` user to run PostgreSQL as"
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn run(command: &mut Command) {
    let output = command.output().expect("command runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// SIGTERM to the child's process group, SIGKILL if it lingers, and reaped.
fn stop_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let signal = |name: &str| {
        let _ = Command::new("kill")
            .args([name, "--", &group])
            .stderr(Stdio::null())
            .status();
    };
    signal("-TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal("-KILL");
    let _ = child.wait();
}

/// A throwaway PostgreSQL cluster of its own that speaks TLS with a server
/// certificate signed by a CA made for it (openssl), for the TLS tests. Stopped
/// and removed on drop.
pub struct TlsCluster {
    dir: PathBuf,
    pg_bin: PathBuf,
    pub port: u16,
    /// The CA that signed the server's certificate (PEM).
    pub ca: PathBuf,
    /// Another CA, which signed nothing the server shows.
    pub wrong_ca: PathBuf,
}

impl TlsCluster {
    /// `host` is the name the certificate is issued to (as an IP SAN).
    pub fn start(host: &str) -> TlsCluster {
        let pg_bin = std::env::var_os("GEWE_TEST_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
        let base = std::env::var_os("GEWE_TEST_RUN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("gewe-tls-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        set_mode(&dir, 0o755);
        let openssl = |args: &[&str]| {
            run(Command::new("openssl").current_dir(&dir).args(args));
        };
        for ca in ["ca", "wrong-ca"] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
                "-subj",
                &format!("/CN=gewe test {ca}"),
            ]);
        }
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            &format!("/CN={host}"),
        ]);
        std::fs::write(
            dir.join("server.ext"),
            format!("subjectAltName=IP:{host}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"),
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        // PostgreSQL insists on a private key only its owner can read.
        set_mode(&dir.join("server.key"), 0o600);
        // `pg/data`, where scripts/test-pg-s3's sweep looks, should this
        // process be killed.
        let pg_dir = dir.join("pg");
        std::fs::create_dir_all(&pg_dir).unwrap();
        if is_root() {
            let (uid, gid) = (id_of("-u"), id_of("-g"));
            for entry in ["pg", "server.key", "server.pem"] {
                std::os::unix::fs::chown(dir.join(entry), Some(uid), Some(gid)).unwrap();
            }
        }
        let data = pg_dir.join("data");
        run(pg_command(&pg_bin, "initdb").args([
            "-D".as_ref(),
            data.as_os_str(),
            "-U".as_ref(),
            "postgres".as_ref(),
            "--auth=trust".as_ref(),
            "--no-sync".as_ref(),
        ]));
        for _ in 0..5 {
            let port = free_port();
            let options = format!(
                "-p {port} -c listen_addresses={host} -k {pg} -c fsync=off -c ssl=on \
                 -c ssl_cert_file={dir}/server.pem -c ssl_key_file={dir}/server.key",
                pg = pg_dir.display(),
                dir = dir.display()
            );
            let status = pg_command(&pg_bin, "pg_ctl")
                .args(["-D".as_ref(), data.as_os_str(), "-w".as_ref()])
                .args(["-t", "60", "-o", &options, "-l"])
                .arg(pg_dir.join("server.log"))
                .arg("start")
                .stdout(Stdio::null())
                .status()
                .expect("pg_ctl runs");
            if status.success() {
                return TlsCluster {
                    ca: dir.join("ca.pem"),
                    wrong_ca: dir.join("wrong-ca.pem"),
                    dir,
                    pg_bin,
                    port,
                };
            }
        }
        panic!(
            "PostgreSQL with TLS did not start; see {}",
            pg_dir.join("server.log").display()
        );
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = pg_command(&self.pg_bin, "pg_ctl")
            .args(["-D".as_ref(), self.dir.join("pg/data").as_os_str()])
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
