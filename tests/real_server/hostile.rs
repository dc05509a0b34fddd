//! Hostile pictures against the real binary: each gets the right avatar or a
//! clear error, the server keeps answering, and its peak memory stays bounded.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use image::codecs::gif::GifEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, Frame, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

use crate::image_host::ImageHost;
use crate::pictures::{close, decode, encode, jpeg, jpeg_with_orientation};
use crate::support::{Server, create_accounts};

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const WHITE: [u8; 3] = [255, 255, 255];

/// Peak resident memory allowed for the server after the whole batch.
const RSS_BOUND_MIB: u64 = 512;

enum Want {
    /// ret 200; the avatar's centre has this colour.
    Colour([u8; 3]),
    /// ret 200; upright quadrants red, green / blue, white.
    Upright,
    /// ret 500 with this `data.code` and a detail containing the needle.
    Error(&'static str, &'static str),
}

struct Case {
    name: String,
    url: String,
    want: Want,
    /// Bytes that must never appear in what the server serves back.
    payload: Option<&'static [u8]>,
}

/// Red, green / blue, white quadrants, as the picture should look upright.
fn quadrants(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb(match (x < width / 2, y < height / 2) {
            (true, true) => RED,
            (false, true) => GREEN,
            (true, false) => BLUE,
            (false, false) => WHITE,
        })
    })
}

/// The pixels a camera stores so that applying Exif orientation `tag` shows
/// `upright`: the inverse transform (6 and 8 are each other's inverse, the
/// others undo themselves).
fn stored_for(tag: u8, upright: &RgbImage) -> RgbImage {
    let inverse = match tag {
        6 => 8,
        8 => 6,
        other => other,
    };
    let mut image = DynamicImage::ImageRgb8(upright.clone());
    image.apply_orientation(Orientation::from_exif(inverse).unwrap());
    image.into_rgb8()
}

fn solid_gif(colour: [u8; 3]) -> Vec<u8> {
    encode(
        DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 64, Rgb(colour))),
        ImageFormat::Gif,
    )
}

/// 1000 frames: the first red, every other one blue. Only the first is an avatar.
fn thousand_frame_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, 30);
        let frames = (0..1000).map(|i| {
            let colour = if i == 0 {
                [255, 0, 0, 255]
            } else {
                [0, 0, 255, 255]
            };
            Frame::new(RgbaImage::from_pixel(32, 32, Rgba(colour)))
        });
        encoder.encode_frames(frames).unwrap();
    }
    out
}

/// A small JPEG whose frame header (SOF0) claims `side`×`side`.
fn jpeg_claiming(side: u16) -> Vec<u8> {
    let mut bytes = jpeg(16, 16, [10, 20, 30]);
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline JPEG has SOF0");
    // FFC0, length(2), precision(1), height(2), width(2)
    bytes[sof + 5..sof + 7].copy_from_slice(&side.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&side.to_be_bytes());
    bytes
}

/// A 1×1 PNG whose header claims `side`×`side`: a bomb of a few bytes.
fn png_claiming(side: u32) -> Vec<u8> {
    let mut png = encode(
        DynamicImage::ImageRgb8(RgbImage::new(1, 1)),
        ImageFormat::Png,
    );
    png[16..20].copy_from_slice(&side.to_be_bytes());
    png[20..24].copy_from_slice(&side.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// A real, fully decodable 1-bit grayscale PNG of `side`×`side` zeros: the
/// header is honest and the data is there (deflate with fixed Huffman codes,
/// 258-byte back-references), so only the limits stand between it and
/// side² bytes of memory. 30000×30000 is about 700 KB.
fn real_png_bomb(side: u32) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        len: u32,
    }
    impl Bits {
        /// Writes `n` bits of `value`, least significant first (deflate order).
        fn put(&mut self, value: u32, n: u32) {
            self.acc |= u64::from(value) << self.len;
            self.len += n;
            while self.len >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.len -= 8;
            }
        }
        /// Writes a Huffman code, most significant bit first.
        fn code(&mut self, code: u32, n: u32) {
            self.put(code.reverse_bits() >> (32 - n), n);
        }
    }
    let row = 1 + u64::from(side).div_ceil(8);
    let total = row * u64::from(side);
    let mut bits = Bits {
        out: vec![0x78, 0x01],
        acc: 0,
        len: 0,
    };
    bits.put(1, 1); // final block
    bits.put(1, 2); // fixed Huffman codes
    bits.code(0x30, 8); // literal 0
    let mut left = total - 1;
    while left >= 258 {
        bits.code(0xC5, 8); // length 258
        bits.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        bits.code(0x30, 8);
    }
    bits.code(0, 7); // end of block
    bits.put(0, 7); // flush to a byte boundary
    let mut zlib = bits.out;
    let adler = (((total % 65521) << 16) | 1) as u32; // Adler-32 of zeros
    zlib.extend_from_slice(&adler.to_be_bytes());

    let chunk = |kind: &[u8], data: &[u8]| {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[4..]);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    };
    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]); // 1 bit, grayscale
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &zlib));
    png.extend(chunk(b"IEND", &[]));
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn noise(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x * 7 + y * 13) as u8, (x * y) as u8, (x ^ y) as u8])
    })
}

fn cases(host: &ImageHost) -> Vec<Case> {
    let mut cases = Vec::new();
    // Cases that are not a served file go here, to keep `add` the only borrower.
    let mut others = Vec::new();
    let mut add = |name: &str, content_type: &str, bytes: Vec<u8>, want: Want| {
        let url = host.serve(name, content_type, bytes);
        cases.push(Case {
            name: name.to_owned(),
            url,
            want,
            payload: None,
        });
    };

    // Decompression bombs: refused from the header, before any pixel.
    add(
        "bomb.png",
        "image/png",
        png_claiming(30_000),
        Want::Error("image-too-large", "30000x30000"),
    );
    add(
        "real-bomb.png",
        "image/png",
        real_png_bomb(30_000),
        Want::Error("image-too-large", "30000x30000"),
    );
    // The same construction at a legal size decodes: the bomb is a real PNG.
    add(
        "real-bomb-small.png",
        "image/png",
        real_png_bomb(500),
        Want::Colour([0, 0, 0]),
    );
    add(
        "bomb-max.png",
        "image/png",
        png_claiming(0x7FFF_FFFF),
        Want::Error("image-too-large", "过大"),
    );
    add(
        "bomb.jpg",
        "image/jpeg",
        jpeg_claiming(65_500),
        Want::Error("image-too-large", "65500x65500"),
    );
    // Truncated, empty, not a picture.
    let full_jpeg = encode(DynamicImage::ImageRgb8(noise(400, 400)), ImageFormat::Jpeg);
    add(
        "half.jpg",
        "image/jpeg",
        full_jpeg[..full_jpeg.len() / 2].to_vec(),
        Want::Error("image-corrupt", "损坏"),
    );
    add(
        "headonly.jpg",
        "image/jpeg",
        full_jpeg[..200].to_vec(),
        Want::Error("image-corrupt", "损坏"),
    );
    let full_png = encode(DynamicImage::ImageRgb8(noise(300, 300)), ImageFormat::Png);
    add(
        "half.png",
        "image/png",
        full_png[..full_png.len() / 2].to_vec(),
        Want::Error("image-corrupt", "损坏"),
    );
    add(
        "empty.jpg",
        "image/jpeg",
        Vec::new(),
        Want::Error("image-empty", "图片为空"),
    );
    add(
        "page.jpg",
        "image/jpeg",
        b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>".to_vec(),
        Want::Error("image-unsupported-format", "HTML"),
    );
    add(
        "logo.svg",
        "image/jpeg",
        br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999"><script>alert(1)</script></svg>"#.to_vec(),
        Want::Error("image-unsupported-format", "SVG"),
    );
    let mut html_then_gif = b"<html><!--".to_vec();
    html_then_gif.extend(solid_gif(RED));
    add(
        "html-gif.gif",
        "image/gif",
        html_then_gif,
        Want::Error("image-unsupported-format", "HTML"),
    );
    add(
        "zip.jpg",
        "image/jpeg",
        b"PK\x03\x04\x14\x00\x00\x00rest of a zip".to_vec(),
        Want::Error("image-unsupported-format", "ZIP"),
    );
    // Too big to download: announced, and streamed without Content-Length.
    let mut twenty_mb = jpeg(64, 64, RED);
    twenty_mb.resize(20 * 1024 * 1024, 0);
    add(
        "20mb.jpg",
        "image/jpeg",
        twenty_mb,
        Want::Error("fetch-too-large", "图片过大"),
    );
    others.push(Case {
        name: "endless".to_owned(),
        url: format!("{}/endless", host.base),
        want: Want::Error("fetch-too-large", "图片过大"),
        payload: None,
    });

    // Accepted, and turned into the right avatar.
    add(
        "1000-frames.gif",
        "image/gif",
        thousand_frame_gif(),
        Want::Colour(RED),
    );
    add(
        "cmyk.jpg",
        "image/jpeg",
        include_bytes!("../fixtures/cmyk.jpg").to_vec(),
        Want::Upright,
    );
    let deep = image::ImageBuffer::<Rgb<u16>, Vec<u16>>::from_pixel(
        300,
        200,
        Rgb([0xC000, 0x4000, 0x1000]),
    );
    add(
        "16bit.png",
        "image/png",
        encode(DynamicImage::ImageRgb16(deep), ImageFormat::Png),
        Want::Colour([192, 64, 16]),
    );
    let deep_alpha = image::ImageBuffer::<Rgba<u16>, Vec<u16>>::from_pixel(
        200,
        200,
        Rgba([0, 0, 0xFFFF, 0x8000]),
    );
    add(
        "16bit-alpha.png",
        "image/png",
        encode(DynamicImage::ImageRgba16(deep_alpha), ImageFormat::Png),
        Want::Colour([127, 127, 255]),
    );
    let mut trailer = jpeg(300, 300, GREEN);
    trailer.resize(9 * 1024 * 1024, 0x55);
    add(
        "9mb-trailer.jpg",
        "image/jpeg",
        trailer,
        Want::Colour(GREEN),
    );
    let upright = quadrants(600, 400);
    for tag in 1..=8u8 {
        add(
            &format!("exif-{tag}.jpg"),
            "image/jpeg",
            jpeg_with_orientation(stored_for(tag, &upright), u16::from(tag)),
            Want::Upright,
        );
    }

    // Polyglots: accepted as the picture they start with; the rest never served.
    let mut gif_html = solid_gif(BLUE);
    gif_html.extend_from_slice(b"<html><script>alert(document.cookie)</script></html>");
    others.push(Case {
        name: "gif+html".to_owned(),
        url: host.serve("poly.gif", "text/html", gif_html),
        want: Want::Colour(BLUE),
        payload: Some(b"<script>"),
    });
    let mut jpeg_zip = jpeg(128, 128, [250, 250, 0]);
    jpeg_zip.extend_from_slice(
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00payload.php<?php system($_GET[c]); ?>",
    );
    others.push(Case {
        name: "jpeg+zip".to_owned(),
        url: host.serve("poly.jpg", "image/jpeg", jpeg_zip),
        want: Want::Colour([250, 250, 0]),
        payload: Some(b"PK\x03\x04"),
    });
    cases.extend(others);
    cases
}

async fn check_avatar(server: &Server, token: &str, app_id: &str, case: &Case) {
    let profile = server.profile(token, app_id).await;
    for (key, nominal) in [("bigHeadImgUrl", 640u32), ("smallHeadImgUrl", 132)] {
        let url = profile[key].as_str().unwrap();
        let (status, bytes) = server.get(url).await;
        assert_eq!(status, 200, "{}: {url}", case.name);
        if let Some(payload) = case.payload {
            assert!(
                !bytes.windows(payload.len()).any(|w| w == payload),
                "{}: served bytes carry the payload",
                case.name
            );
        }
        let picture = decode(&bytes);
        let side = picture.width();
        assert_eq!(picture.height(), side);
        assert!(side <= nominal, "{}: {side}", case.name);
        let at = |fx: f32, fy: f32| {
            *picture.get_pixel((side as f32 * fx) as u32, (side as f32 * fy) as u32)
        };
        match case.want {
            Want::Colour(colour) => {
                assert!(
                    close(&at(0.5, 0.5), colour),
                    "{}: {:?}",
                    case.name,
                    at(0.5, 0.5)
                );
            }
            Want::Upright => {
                for (fx, fy, colour) in [
                    (0.25, 0.25, RED),
                    (0.75, 0.25, GREEN),
                    (0.25, 0.75, BLUE),
                    (0.75, 0.75, WHITE),
                ] {
                    let pixel = at(fx, fy);
                    assert!(
                        close(&pixel, colour),
                        "{} at {key} ({fx},{fy}): {pixel:?}",
                        case.name
                    );
                }
            }
            Want::Error(..) => unreachable!(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_pictures_get_the_right_avatar_or_a_clear_error_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("GEWE_FETCH_TIMEOUT_MS", "3000"),
            // Generous: the machine may be busy; this test is about memory and
            // answers, not about overload.
            ("GEWE_DECODE_QUEUE_TIMEOUT_MS", "120000"),
            ("GEWE_PROCESS_TIMEOUT_MS", "240000"),
        ],
    )
    .await;
    let host = ImageHost::start().await;
    let token = server.new_token().await;
    let app_id = create_accounts(dir.path(), &token, 1).await.remove(0);

    // A server that trickles a byte a second: it must time out, and meanwhile
    // the server must keep answering everyone else.
    let trickle = {
        let (base, client, token, app_id, url) = (
            server.base.clone(),
            server.client.clone(),
            token.clone(),
            app_id.clone(),
            format!("{}/slow", host.base),
        );
        tokio::spawn(async move {
            let started = Instant::now();
            let answer: serde_json::Value = client
                .post(format!("{base}/gewe/v2/api/personal/updateHeadImg"))
                .header("X-GEWE-TOKEN", token)
                .json(&serde_json::json!({"appId": app_id, "headImgUrl": url}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (answer, started.elapsed())
        })
    };

    let cases = cases(&host);
    for case in &cases {
        let before = server.profile(&token, &app_id).await;
        let answer = server.update_head_img(&token, &app_id, &case.url).await;
        match case.want {
            Want::Error(code, needle) => {
                assert_eq!(answer["ret"], 500, "{}: {answer}", case.name);
                assert_eq!(answer["msg"], "修改头像失败", "{}: {answer}", case.name);
                assert_eq!(answer["data"]["code"], code, "{}: {answer}", case.name);
                let detail = answer["data"]["msg"].as_str().unwrap();
                assert!(detail.contains(needle), "{}: {answer}", case.name);
                assert_eq!(
                    server.profile(&token, &app_id).await,
                    before,
                    "{}",
                    case.name
                );
            }
            _ => {
                assert_eq!(answer["ret"], 200, "{}: {answer}", case.name);
                check_avatar(&server, &token, &app_id, case).await;
            }
        }
        assert!(
            server.alive().await,
            "{}: server stopped answering",
            case.name
        );
    }

    let (answer, took) = trickle.await.unwrap();
    assert_eq!(answer["data"]["code"], "fetch-timeout", "{answer}");
    assert!(took < Duration::from_secs(30), "trickle took {took:?}");

    // The whole refused batch again, all at once, twice over.
    let refused: Vec<&Case> = cases
        .iter()
        .filter(|c| matches!(c.want, Want::Error(..)))
        .collect();
    let answers = join_all(
        refused
            .iter()
            .chain(refused.iter())
            .map(|case| server.update_head_img(&token, &app_id, &case.url)),
    )
    .await;
    for (case, answer) in refused.iter().chain(refused.iter()).zip(&answers) {
        let Want::Error(code, _) = case.want else {
            unreachable!()
        };
        assert_eq!(
            answer["data"]["code"], code,
            "{} (concurrent): {answer}",
            case.name
        );
    }

    let peak_mib = server.peak_rss_kib() / 1024;
    println!(
        "hostile: {} pictures tried ({} refused, twice more concurrently), 1 trickle; server peak RSS {peak_mib} MiB",
        cases.len(),
        refused.len()
    );
    assert!(
        peak_mib < RSS_BOUND_MIB,
        "server peak RSS {peak_mib} MiB, bound {RSS_BOUND_MIB} MiB"
    );

    // Still serving: a plain picture works.
    let fine = host.serve("fine.jpg", "image/jpeg", jpeg(100, 100, [1, 2, 3]));
    assert_eq!(
        server.update_head_img(&token, &app_id, &fine).await["ret"],
        200
    );
    server.kill();
}
