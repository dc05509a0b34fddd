//! gewe-http 0.1.4 (the Rust GeWe client from crates.io), unchanged, through the login
//! and personal flow against a running gewe server. Exits non-zero if any step fails.
//!
//! gewe-http is written for cloud GeWe: every path is hard-coded under `gewe/v2/api/`
//! (so its base URL is the server's origin), the callback is set through
//! `login/setCallback`, and it has no getTokenId or deviceList call — a cloud token
//! comes from the console, so the token here comes from `gewe token create`.
//!
//! Environment (scripts/clients sets it):
//!   GEWE_CLIENTS_SERVER  http://127.0.0.1:PORT
//!   GEWE_CLIENTS_TOKEN   a token (`gewe token create`)
//!   GEWE_CLIENTS_APP_ID  an operator-provisioned account of that token (`gewe account create`)
//! and `zbarimg` (Debian zbar-tools) on the PATH, to read QR codes.
//!
//! Two flows: a new device logged in by QR code (getLoginQrCode → checkLogin until
//! status 2 → checkOnline → setCallback → every personal route → logout), and the
//! provisioned account (checkOnline → every personal route → logout). Pictures and
//! the callback receiver are served from 127.0.0.1 by this program.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, ExitCode};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use gewe_core::{
    CheckLoginRequest, CheckOnlineRequest, GetLoginQrCodeRequest, GetProfileRequest,
    GetProfileResponse, GetQrCodeRequest, GetSafetyInfoRequest, LogoutRequest,
    PrivacySettingsRequest, SetCallbackRequest, UpdateHeadImgRequest, UpdateProfileRequest,
};
use gewe_http::GeweHttpClient;

const REGION_ID: &str = "320000";
const MAX_POLLS: usize = 10;
const CALLBACK_TEST_MSG: &str = "回调地址链接成功！";

type Outcome<T> = Result<T, String>;

fn fail<T>(message: impl Into<String>) -> Outcome<T> {
    Err(message.into())
}

fn ensure(condition: bool, message: impl FnOnce() -> String) -> Outcome<()> {
    if condition { Ok(()) } else { Err(message()) }
}

/// Counts and prints each step's result.
#[derive(Default)]
struct Report {
    passed: usize,
    failed: usize,
    not_run: usize,
}

impl Report {
    fn record<T>(&mut self, flow: &str, step: &str, outcome: Outcome<T>) -> Option<T> {
        match outcome {
            Ok(value) => {
                self.passed += 1;
                println!("ok      {flow}: {step}");
                Some(value)
            }
            Err(reason) => {
                self.failed += 1;
                println!("FAIL    {flow}: {step}: {reason}");
                None
            }
        }
    }

    fn not_run(&mut self, flow: &str, steps: &[&str], because: &str) {
        for step in steps {
            self.not_run += 1;
            println!("not run {flow}: {step} ({because})");
        }
    }
}

/// A small HTTP server on 127.0.0.1: GET answers from `files`, POST bodies are kept
/// (the callback receiver) and answered `SUCCESS`.
struct Loopback {
    port: u16,
    state: Arc<(Mutex<LoopbackState>, Condvar)>,
}

#[derive(Default)]
struct LoopbackState {
    files: HashMap<String, (&'static str, Vec<u8>)>,
    gets: Vec<String>,
    posts: Vec<(String, String, Vec<u8>)>, // path, content type, body
}

impl Loopback {
    fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new((Mutex::new(LoopbackState::default()), Condvar::new()));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve_one(stream, &shared);
                });
            }
        });
        Ok(Loopback { port, state })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn serve(&self, path: &str, content_type: &'static str, body: Vec<u8>) -> String {
        let (lock, _) = &*self.state;
        lock.lock()
            .unwrap()
            .files
            .insert(path.to_owned(), (content_type, body));
        self.url(path)
    }

    fn was_fetched(&self, path: &str) -> bool {
        let (lock, _) = &*self.state;
        lock.lock().unwrap().gets.iter().any(|p| p == path)
    }

    /// The first body POSTed to `path` (and its content type), waiting up to `timeout`.
    fn wait_for_post(&self, path: &str, timeout: Duration) -> Outcome<(String, Vec<u8>)> {
        let (lock, cond) = &*self.state;
        let deadline = Instant::now() + timeout;
        let mut state = lock.lock().unwrap();
        loop {
            if let Some((_, content_type, body)) = state.posts.iter().find(|(p, _, _)| p == path) {
                return Ok((content_type.clone(), body.clone()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return fail(format!("nothing was POSTed to {path} within {timeout:?}"));
            }
            state = cond.wait_timeout(state, left).unwrap().0;
        }
    }
}

fn serve_one(stream: TcpStream, shared: &(Mutex<LoopbackState>, Condvar)) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        let mut body = Vec::new();
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2]; // data + CRLF
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
        body
    } else {
        let length = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    };

    let (lock, cond) = shared;
    let (status, content_type, payload) = {
        let mut state = lock.lock().unwrap();
        let answer = if method == "POST" {
            let content_type = headers.get("content-type").cloned().unwrap_or_default();
            state.posts.push((path.clone(), content_type, body));
            ("200 OK", "text/plain", b"SUCCESS".to_vec())
        } else {
            state.gets.push(path.clone());
            match state.files.get(&path) {
                Some((content_type, bytes)) => ("200 OK", *content_type, bytes.clone()),
                None => ("404 Not Found", "text/plain", b"not found".to_vec()),
            }
        };
        cond.notify_all();
        answer
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    )?;
    stream.write_all(&payload)?;
    stream.flush()
}

/// A real PNG written by hand (RGB, stored deflate blocks): `width`×`height`, a
/// gradient coloured by `seed`, so every run uploads a new picture.
fn make_png(width: u32, height: u32, seed: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut typed = kind.to_vec();
        typed.extend_from_slice(data);
        out.extend_from_slice(&typed);
        out.extend_from_slice(&crc32(&typed).to_be_bytes());
    }

    let [_, r, g, b] = seed.to_be_bytes();
    let mut raw = Vec::with_capacity(((width * 3 + 1) * height) as usize);
    for y in 0..height {
        raw.push(0); // filter: none
        for x in 0..width {
            let ring = ((x as i64 - width as i64 / 2).pow(2)
                + (y as i64 - height as i64 / 2).pow(2))
                / 900;
            raw.extend_from_slice(&[
                r.wrapping_add((x / 3) as u8),
                g.wrapping_add((y / 3) as u8),
                b.wrapping_add((ring * 16) as u8),
            ]);
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut bb) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        bb = (bb + a) % 65_521;
    }
    zlib.extend_from_slice(&((bb << 16) | a).to_be_bytes());

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8 bit, RGB
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// The text zbarimg reads from a picture.
fn decode_qr(picture: &[u8], name: &str) -> Outcome<String> {
    let path = std::env::temp_dir().join(format!("gewe-http-check-{}-{name}", std::process::id()));
    std::fs::write(&path, picture).map_err(|e| format!("writing {}: {e}", path.display()))?;
    let output = Command::new("zbarimg")
        .arg("--raw")
        .arg("-q")
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    let output = output.map_err(|e| format!("zbarimg (apt-get install zbar-tools): {e}"))?;
    ensure(output.status.success(), || {
        format!("zbarimg found no QR code ({})", output.status)
    })?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    ensure(!text.is_empty(), || "empty QR content".into())?;
    Ok(text)
}

fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// GET an avatar URL: 200, `image/jpeg`, JPEG bytes.
async fn fetch_avatar(http: &reqwest::Client, url: &str) -> Outcome<()> {
    ensure(url.starts_with("http://127.0.0.1:"), || {
        format!("avatar URL not on this server: {url}")
    })?;
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    ensure(status == reqwest::StatusCode::OK, || {
        format!("GET {url}: {status}")
    })?;
    ensure(content_type.split(';').next() == Some("image/jpeg"), || {
        format!("GET {url}: Content-Type {content_type:?}")
    })?;
    ensure(is_jpeg(&body), || format!("GET {url}: not a JPEG"))
}

struct Ctx {
    client: GeweHttpClient,
    http: reqwest::Client,
    token: String,
    loopback: Loopback,
}

async fn profile(ctx: &Ctx, app_id: &str) -> Outcome<GetProfileResponse> {
    ctx.client
        .get_profile(GetProfileRequest { app_id })
        .await
        .map_err(|e| format!("getProfile: {e}"))
}

async fn check_online(ctx: &Ctx, app_id: &str, expected: bool) -> Outcome<()> {
    let online = ctx
        .client
        .check_online(CheckOnlineRequest { app_id })
        .await
        .map_err(|e| format!("checkOnline: {e}"))?;
    ensure(online == expected, || {
        format!("checkOnline answered {online}, expected {expected}")
    })
}

async fn update_profile(ctx: &Ctx, app_id: &str) -> Outcome<()> {
    let request = UpdateProfileRequest {
        app_id,
        nick_name: Some("锈客户端"),
        country: Some("CN"),
        province: Some("Sichuan"),
        city: Some("Chengdu"),
        sex: Some(2), // Option<i32>: a JSON number
        signature: Some("gewe-http 0.1.4 签名"),
    };
    ctx.client
        .update_profile(request)
        .await
        .map_err(|e| format!("updateProfile: {e}"))?;
    let p = profile(ctx, app_id).await?;
    let got = (
        p.nick_name.as_str(),
        p.country.as_str(),
        p.province.as_str(),
        p.city.as_str(),
        p.sex,
        p.signature.as_str(),
    );
    let want = (
        "锈客户端",
        "CN",
        "Sichuan",
        "Chengdu",
        2,
        "gewe-http 0.1.4 签名",
    );
    ensure(got == want, || {
        format!("getProfile after updateProfile: {got:?}, expected {want:?}")
    })
}

async fn get_qr_code(ctx: &Ctx, app_id: &str) -> Outcome<()> {
    let data = ctx
        .client
        .get_qr_code(GetQrCodeRequest { app_id })
        .await
        .map_err(|e| format!("getQrCode: {e}"))?;
    ensure(!data.qr_code.starts_with("data:"), || {
        "qrCode has a data: prefix".into()
    })?;
    let picture = BASE64
        .decode(&data.qr_code)
        .map_err(|e| format!("qrCode is not base64: {e}"))?;
    ensure(is_jpeg(&picture), || "qrCode is not a JPEG".into())?;
    decode_qr(&picture, "card.jpg").map(|_| ())
}

async fn get_safety_info(ctx: &Ctx, app_id: &str) -> Outcome<()> {
    let data = ctx
        .client
        .get_safety_info(GetSafetyInfoRequest { app_id })
        .await
        .map_err(|e| format!("getSafetyInfo: {e}"))?;
    ensure(!data.list.is_empty(), || "getSafetyInfo: empty list".into())
}

async fn privacy_settings(ctx: &Ctx, app_id: &str) -> Outcome<()> {
    for open in [true, false] {
        ctx.client
            .privacy_settings(PrivacySettingsRequest {
                app_id,
                option: 4,
                open,
            })
            .await
            .map_err(|e| format!("privacySettings open={open}: {e}"))?;
    }
    Ok(())
}

async fn update_head_img(ctx: &Ctx, app_id: &str, flow: &str) -> Outcome<()> {
    let before = profile(ctx, app_id).await?;
    let path = format!("/pictures/gewe-http-{flow}.png");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(7);
    let url = ctx
        .loopback
        .serve(&path, "image/png", make_png(900, 760, seed));
    ctx.client
        .update_head_img(UpdateHeadImgRequest {
            app_id,
            head_img_url: &url,
        })
        .await
        .map_err(|e| format!("updateHeadImg: {e}"))?;
    ensure(ctx.loopback.was_fetched(&path), || {
        "the server never fetched the picture".into()
    })?;
    let after = profile(ctx, app_id).await?;
    ensure(after.big_head_img_url != before.big_head_img_url, || {
        "bigHeadImgUrl unchanged".into()
    })?;
    ensure(
        after.small_head_img_url != before.small_head_img_url,
        || "smallHeadImgUrl unchanged".into(),
    )?;
    fetch_avatar(&ctx.http, &after.big_head_img_url).await?;
    fetch_avatar(&ctx.http, &after.small_head_img_url).await
}

/// Every personal route, then logout.
async fn personal_and_logout(
    ctx: &Ctx,
    report: &mut Report,
    flow: &str,
    app_id: &str,
    wxid: Option<&str>,
) {
    let got = profile(ctx, app_id).await.and_then(|p| match wxid {
        Some(w) if p.wxid != w => fail(format!(
            "getProfile wxid {} differs from checkLogin's {w}",
            p.wxid
        )),
        _ => Ok(()),
    });
    report.record(flow, "getProfile", got);
    report.record(
        flow,
        "updateProfile (all fields, sex 2)",
        update_profile(ctx, app_id).await,
    );
    report.record(
        flow,
        "getQrCode (zbarimg reads it)",
        get_qr_code(ctx, app_id).await,
    );
    report.record(flow, "getSafetyInfo", get_safety_info(ctx, app_id).await);
    report.record(
        flow,
        "privacySettings open true/false",
        privacy_settings(ctx, app_id).await,
    );
    report.record(
        flow,
        "updateHeadImg + new avatar URLs",
        update_head_img(ctx, app_id, flow).await,
    );
    let logout = async {
        ctx.client
            .logout(LogoutRequest { app_id })
            .await
            .map_err(|e| format!("logout: {e}"))?;
        check_online(ctx, app_id, false).await
    };
    report.record(flow, "logout, then checkOnline false", logout.await);
}

const PERSONAL_STEPS: [&str; 7] = [
    "getProfile",
    "updateProfile (all fields, sex 2)",
    "getQrCode (zbarimg reads it)",
    "getSafetyInfo",
    "privacySettings open true/false",
    "updateHeadImg + new avatar URLs",
    "logout, then checkOnline false",
];

async fn qr_login_flow(ctx: &Ctx, report: &mut Report) {
    let flow = "qr-login";
    let qr = async {
        let request = GetLoginQrCodeRequest {
            app_id: "",
            r#type: "ipad",
            region_id: REGION_ID,
            proxy_ip: None,
            ttuid: None,
            aid: None,
        };
        let data = ctx
            .client
            .get_login_qr_code(request)
            .await
            .map_err(|e| format!("getLoginQrCode: {e}"))?;
        ensure(data.app_id.starts_with("wx_"), || {
            format!("appId {:?}", data.app_id)
        })?;
        let encoded = data
            .qr_img_base64
            .split_once(";base64,")
            .filter(|(head, _)| head.starts_with("data:image/"))
            .map(|(_, b64)| b64)
            .ok_or_else(|| "qrImgBase64 lacks its data:image/…;base64, prefix".to_owned())?;
        let picture = BASE64
            .decode(encoded)
            .map_err(|e| format!("qrImgBase64: {e}"))?;
        let text = decode_qr(&picture, "login.img")?;
        ensure(text == data.qr_data, || {
            format!("qrImgBase64 encodes {text:?}, qrData is {:?}", data.qr_data)
        })?;
        Ok((data.app_id, data.uuid))
    };
    let Some((app_id, uuid)) = report.record(flow, "getLoginQrCode (appId \"\")", qr.await) else {
        let mut rest = vec![
            "checkLogin until status 2",
            "checkOnline true",
            "setCallback + test ping",
        ];
        rest.extend(PERSONAL_STEPS);
        report.not_run(flow, &rest, "no appId");
        return;
    };

    let login = async {
        let mut statuses = Vec::new();
        for _ in 0..MAX_POLLS {
            let request = CheckLoginRequest {
                app_id: &app_id,
                uuid: &uuid,
                proxy_ip: None,
                captch_code: None,
                auto_sliding: Some(false),
            };
            let data = ctx
                .client
                .check_login(request)
                .await
                .map_err(|e| format!("checkLogin: {e}"))?;
            statuses.push(data.status);
            if data.status == 2 {
                let wxid = data.login_info.and_then(|i| i.wxid);
                return wxid.ok_or_else(|| "status 2 without loginInfo.wxid".to_owned());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        fail(format!(
            "no login after {MAX_POLLS} polls: statuses {statuses:?}"
        ))
    };
    let wxid = report.record(flow, "checkLogin until status 2", login.await);
    report.record(
        flow,
        "checkOnline true",
        check_online(ctx, &app_id, true).await,
    );

    let callback = async {
        let path = "/callback/gewe-http";
        ctx.client
            .set_callback(SetCallbackRequest {
                token: &ctx.token,
                callback_url: &ctx.loopback.url(path),
            })
            .await
            .map_err(|e| format!("setCallback: {e}"))?;
        let (content_type, body) = ctx.loopback.wait_for_post(path, Duration::from_secs(5))?;
        ensure(content_type.starts_with("application/json"), || {
            format!("ping Content-Type {content_type:?}")
        })?;
        let ping: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("ping is not JSON: {e}"))?;
        let want = serde_json::json!({"testMsg": CALLBACK_TEST_MSG, "token": ctx.token});
        ensure(ping == want, || format!("ping {ping}, expected {want}"))
    };
    report.record(flow, "setCallback + test ping", callback.await);

    personal_and_logout(ctx, report, flow, &app_id, wxid.as_deref()).await;
}

async fn provisioned_flow(ctx: &Ctx, report: &mut Report, app_id: &str) {
    let flow = "provisioned";
    report.record(
        flow,
        "checkOnline true",
        check_online(ctx, app_id, true).await,
    );
    personal_and_logout(ctx, report, flow, app_id, None).await;
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set (run scripts/clients)"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let setup = || -> Result<(Ctx, String), String> {
        let origin = env("GEWE_CLIENTS_SERVER")?;
        let token = env("GEWE_CLIENTS_TOKEN")?;
        let app_id = env("GEWE_CLIENTS_APP_ID")?;
        let client = GeweHttpClient::new(token.clone(), origin).map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| e.to_string())?;
        let loopback = Loopback::start().map_err(|e| e.to_string())?;
        Ok((
            Ctx {
                client,
                http,
                token,
                loopback,
            },
            app_id,
        ))
    };
    let (ctx, app_id) = match setup() {
        Ok(ready) => ready,
        Err(reason) => {
            eprintln!("gewe-http check: {reason}");
            return ExitCode::from(2);
        }
    };

    let mut report = Report::default();
    qr_login_flow(&ctx, &mut report).await;
    provisioned_flow(&ctx, &mut report, &app_id).await;

    println!(
        "gewe-http 0.1.4: {} passed, {} failed, {} not run",
        report.passed, report.failed, report.not_run
    );
    if report.failed == 0 && report.not_run == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
