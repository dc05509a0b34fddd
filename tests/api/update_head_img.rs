use image::{DynamicImage, ImageFormat, RgbImage};
use serde_json::json;

use crate::helpers::{
    PREFIXES, Setup, TestApp, assert_error, assert_error_detail, blob_files, spawn_app,
    spawn_app_with,
};
use crate::image_host::ImageHost;
use crate::pictures::{
    close, decode, encode, jpeg, jpeg_with_orientation, png_with_alpha, two_tone,
};

const SIZES: [(&str, u32); 5] = [("0", 640), ("132", 132), ("96", 96), ("64", 64), ("46", 46)];

async fn account(app: &TestApp) -> (String, String) {
    let token = app.new_token().await;
    let app_id = app.new_account(&token).await;
    (token, app_id)
}

fn avatar_base(profile: &serde_json::Value) -> String {
    let big = profile["bigHeadImgUrl"].as_str().unwrap();
    big.strip_suffix("/0").unwrap().to_owned()
}

#[tokio::test]
async fn update_then_profile_then_every_size_serves_the_new_picture() {
    let app = spawn_app().await;
    let host = ImageHost::start().await;
    let (token, app_id) = account(&app).await;
    let before = app.profile(&token, &app_id).await;

    // EXIF orientation 6: stored as a landscape top-red/bottom-blue picture that a
    // viewer rotates 90° clockwise, so upright the left half is blue, the right red.
    let picture = jpeg_with_orientation(two_tone(1200, 800, [255, 0, 0], [0, 0, 255]), 6);
    let url = host.serve("rotated.jpg", "image/jpeg", picture);

    for prefix in PREFIXES {
        let envelope = app
            .call(
                &format!("{prefix}/personal/updateHeadImg"),
                Some(&token),
                json!({"appId": app_id, "headImgUrl": url}),
            )
            .await;
        assert_eq!(envelope, json!({"ret": 200, "msg": "操作成功"}));
    }

    let after = app.profile(&token, &app_id).await;
    assert_ne!(
        before["bigHeadImgUrl"], after["bigHeadImgUrl"],
        "the URL changes with the picture"
    );
    assert_eq!(
        avatar_base(&after),
        after["smallHeadImgUrl"]
            .as_str()
            .unwrap()
            .strip_suffix("/132")
            .unwrap()
    );

    for (size, side) in SIZES {
        let response = app
            .client
            .get(format!("{}/{size}", avatar_base(&after)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{size}");
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let picture = decode(&response.bytes().await.unwrap());
        assert_eq!(picture.dimensions(), (side, side), "size {size}");
        let quarter = side / 4;
        assert!(
            close(picture.get_pixel(quarter, side / 2), [0, 0, 255]),
            "left is blue at {size}"
        );
        assert!(
            close(picture.get_pixel(side - quarter, side / 2), [255, 0, 0]),
            "right is red at {size}"
        );
    }
}

#[tokio::test]
async fn small_pictures_are_not_upscaled_and_alpha_becomes_white() {
    let app = spawn_app().await;
    let host = ImageHost::start().await;
    let (token, app_id) = account(&app).await;
    let url = host.serve("clear.png", "image/png", png_with_alpha(300, 200));
    assert_eq!(app.update_head_img(&token, &app_id, &url).await["ret"], 200);
    let profile = app.profile(&token, &app_id).await;
    let big = app
        .client
        .get(profile["bigHeadImgUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let picture = decode(&big.bytes().await.unwrap());
    assert_eq!(picture.dimensions(), (200, 200));
    assert!(close(picture.get_pixel(100, 100), [255, 255, 255]));
}

#[tokio::test]
async fn every_accepted_format_works_whatever_the_content_type_says() {
    let app = spawn_app().await;
    let host = ImageHost::start().await;
    let (token, app_id) = account(&app).await;
    let source = DynamicImage::ImageRgb8(two_tone(400, 400, [0, 200, 0], [200, 0, 200]));
    for (name, format) in [
        ("a.jpg", ImageFormat::Jpeg),
        ("a.png", ImageFormat::Png),
        ("a.gif", ImageFormat::Gif),
        ("a.webp", ImageFormat::WebP),
    ] {
        let url = host.serve(
            name,
            "application/octet-stream",
            encode(source.clone(), format),
        );
        let envelope = app.update_head_img(&token, &app_id, &url).await;
        assert_eq!(envelope["ret"], 200, "{name}: {envelope}");
    }
}

#[tokio::test]
async fn resending_the_same_picture_creates_nothing_new() {
    let app = spawn_app().await;
    let host = ImageHost::start().await;
    let (token, app_id) = account(&app).await;
    let url = host.serve("same.jpg", "image/jpeg", jpeg(500, 500, [10, 120, 200]));

    assert_eq!(app.update_head_img(&token, &app_id, &url).await["ret"], 200);
    let first = app.profile(&token, &app_id).await;
    let blobs = blob_files(&app.data_dir);
    let history = app.history_len(&app_id).await;

    assert_eq!(app.update_head_img(&token, &app_id, &url).await["ret"], 200);
    assert_eq!(app.profile(&token, &app_id).await, first);
    assert_eq!(blob_files(&app.data_dir), blobs, "no new blobs");
    assert_eq!(
        app.history_len(&app_id).await,
        history,
        "no new history row"
    );

    // The same picture for a second account shares the stored variants.
    let other = app.new_account(&token).await;
    let blobs = blob_files(&app.data_dir);
    assert_eq!(app.update_head_img(&token, &other, &url).await["ret"], 200);
    assert_eq!(blob_files(&app.data_dir), blobs);
    assert_eq!(
        avatar_base(&app.profile(&token, &other).await),
        avatar_base(&first)
    );
}

#[tokio::test]
async fn avatar_urls_are_cache_correct() {
    let app = spawn_app().await;
    let host = ImageHost::start().await;
    let (token, app_id) = account(&app).await;
    let old = avatar_base(&app.profile(&token, &app_id).await);
    let url = host.serve("new.jpg", "image/jpeg", jpeg(700, 700, [200, 30, 30]));
    assert_eq!(app.update_head_img(&token, &app_id, &url).await["ret"], 200);
    let new = avatar_base(&app.profile(&token, &app_id).await);

    let response = app.client.get(format!("{new}/132")).send().await.unwrap();
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong ETag: {etag}"
    );

    let revalidated = app
        .client
        .get(format!("{new}/132"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert_eq!(revalidated.headers()["etag"], etag.as_str());
    assert!(revalidated.bytes().await.unwrap().is_empty());

    let other_size = app
        .client
        .get(format!("{new}/0"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(other_size.status(), 200, "another size has another ETag");

    let head = app.client.head(format!("{new}/46")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "image/jpeg");
    assert!(
        head.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );

    // The previous avatar stays served (history), unknown ids and sizes are 404.
    assert_eq!(
        app.client
            .get(format!("{old}/0"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let unknown_id = format!("{}/mmhead/{}/0", app.base, "0".repeat(32));
    for url in [
        format!("{new}/100"),
        format!("{new}/"),
        unknown_id.clone(),
        format!("{}/mmhead/..%2f..%2fetc/0", app.base),
    ] {
        assert_eq!(
            app.client.get(&url).send().await.unwrap().status(),
            404,
            "{url}"
        );
    }
    let unknown_conditional = app
        .client
        .get(&unknown_id)
        .header("if-none-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_conditional.status(), 404);
}

#[tokio::test]
async fn head_img_url_is_required() {
    let app = spawn_app().await;
    let (token, app_id) = account(&app).await;
    for body in [
        json!({"appId": app_id}),
        json!({"appId": app_id, "headImgUrl": ""}),
        json!({"appId": app_id, "headImgUrl": null}),
    ] {
        let envelope = app
            .call("/v2/api/personal/updateHeadImg", Some(&token), body)
            .await;
        assert_eq!(envelope, json!({"ret": 500, "msg": "headImgUrl不可为空"}));
    }
    let envelope = app
        .call(
            "/v2/api/personal/updateHeadImg",
            Some(&token),
            json!({"headImgUrl": "http://127.0.0.1/x.jpg"}),
        )
        .await;
    assert_eq!(envelope, json!({"ret": 500, "msg": "appId不可为空"}));
}

/// Each failure: a clear message, and the account, its history and the blob
/// folder exactly as they were.
#[tokio::test]
async fn failures_say_why_and_change_nothing() {
    let app = spawn_app_with(Setup {
        tweak: |s| {
            s.fetch_max_bytes = 256 * 1024;
            s.fetch_timeout_ms = 1500;
        },
        ..Setup::default()
    })
    .await;
    let host = ImageHost::start().await;
    let (token, app_id) = account(&app).await;
    let before = app.profile(&token, &app_id).await;
    let blobs = blob_files(&app.data_dir);

    let mut bomb = encode(
        DynamicImage::ImageRgb8(RgbImage::new(1, 1)),
        ImageFormat::Png,
    );
    patch_png_size(&mut bomb, 30000, 30000);
    let truncated = {
        let full = jpeg(800, 800, [1, 2, 3]);
        full[..full.len() / 2].to_vec()
    };
    let big_noise = {
        let noise = RgbImage::from_fn(1000, 1000, |x, y| {
            image::Rgb([(x * 7 + y * 13) as u8, (x * y) as u8, (x ^ y) as u8])
        });
        encode(DynamicImage::ImageRgb8(noise), ImageFormat::Png)
    };
    assert!(big_noise.len() > 256 * 1024);

    let cases: Vec<(String, &str, &str)> = vec![
        (
            host.serve(
                "page.jpg",
                "image/jpeg",
                b"<!DOCTYPE html><html><body>hi</body></html>".to_vec(),
            ),
            "image-unsupported-format",
            "不支持的图片格式",
        ),
        (
            host.serve(
                "logo.svg",
                "image/svg+xml",
                br#"<svg xmlns="http://www.w3.org/2000/svg"/>"#.to_vec(),
            ),
            "image-unsupported-format",
            "不支持的图片格式",
        ),
        (
            host.serve("empty.jpg", "image/jpeg", Vec::new()),
            "image-empty",
            "图片为空",
        ),
        (
            host.serve("bomb.png", "image/png", bomb),
            "image-too-large",
            "30000x30000",
        ),
        (
            host.serve("half.jpg", "image/jpeg", truncated),
            "image-corrupt",
            "损坏",
        ),
        (
            host.serve("huge.png", "image/png", big_noise),
            "fetch-too-large",
            "图片过大",
        ),
        (
            format!("{}/files/missing.jpg", host.base),
            "fetch-http-status",
            "404",
        ),
        (
            format!("{}/not-modified", host.base),
            "fetch-http-status",
            "304",
        ),
        (format!("{}/slow", host.base), "fetch-timeout", "超时"),
        (
            format!("{}/endless", host.base),
            "fetch-too-large",
            "图片过大",
        ),
        (
            format!("{}/redirect/4/x.jpg", host.base),
            "fetch-too-many-redirects",
            "重定向",
        ),
        (
            "http://127.0.0.1:9/closed.jpg".to_owned(),
            "fetch-connect",
            "无法连接",
        ),
    ];
    for (url, code, needle) in cases {
        let envelope = app.update_head_img(&token, &app_id, &url).await;
        assert_error_detail(&envelope, "修改头像失败", needle);
        assert_eq!(envelope["data"]["code"], code, "{url}: {envelope}");
    }
    assert_eq!(app.profile(&token, &app_id).await, before);
    assert_eq!(
        app.history_len(&app_id).await,
        1,
        "only the account's first avatar"
    );
    assert_eq!(
        blob_files(&app.data_dir),
        blobs,
        "no blobs written for failed updates"
    );
}

#[tokio::test]
async fn someone_elses_device_is_not_fetched_for() {
    let app = spawn_app().await;
    let host = ImageHost::start().await;
    let (_, alices_device) = account(&app).await;
    let bob = app.new_token().await;
    let url = host.serve("a.jpg", "image/jpeg", jpeg(100, 100, [0, 0, 0]));
    let envelope = app.update_head_img(&bob, &alices_device, &url).await;
    assert_eq!(
        envelope,
        json!({"ret": 500, "msg": "修改头像失败", "data": {"code": "-1", "msg": format!("[{alices_device}]设备不存在")}})
    );
    assert_eq!(host.hits(), 0);
}

#[tokio::test]
async fn bad_urls_are_refused_before_any_fetch() {
    let app = spawn_app().await;
    let (token, app_id) = account(&app).await;
    for url in [
        "ftp://127.0.0.1/a.jpg",
        "file:///etc/passwd",
        "http://user:pw@127.0.0.1/a.jpg",
        "not a url",
    ] {
        let envelope = app.update_head_img(&token, &app_id, url).await;
        assert_error(&envelope, "headImgUrl格式错误");
    }
}

/// Rewrites a PNG's IHDR width and height (and its CRC), keeping the tiny pixel data.
fn patch_png_size(png: &mut [u8], width: u32, height: u32) {
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
}

/// A picture rendered once is never decoded again: sent again (from another
/// address, for another account, through an instance that would now refuse to
/// decode it), it gets the avatar it got the first time.
#[tokio::test]
async fn the_same_picture_reuses_its_avatar_without_decoding() {
    let first = spawn_app().await;
    let host = ImageHost::start().await;
    let picture = jpeg(64, 64, [10, 120, 230]);
    let url = host.serve("a.jpg", "image/jpeg", picture.clone());
    let token = first.new_token().await;
    let app_id = first.new_account(&token).await;
    assert_eq!(
        first.update_head_img(&token, &app_id, &url).await["ret"],
        200
    );
    let avatar_path = |profile: serde_json::Value| {
        let url = profile["bigHeadImgUrl"].as_str().unwrap().to_owned();
        url[url.find("/mmhead/").unwrap()..].to_owned()
    };
    let rendered = avatar_path(first.profile(&token, &app_id).await);
    let data_dir = first.data_dir.clone();
    let (_, temp) = first.stop().await;

    // Same data, but pictures over 16 px a side are refused at decoding.
    let strict = spawn_app_with(Setup {
        data_dir: Some(data_dir),
        tweak: |s| s.image_max_side = 16,
        ..Setup::default()
    })
    .await;
    let other = strict.new_account(&token).await;
    let copy = host.serve("copy-of-a.jpg", "image/jpeg", picture);
    let answer = strict.update_head_img(&token, &other, &copy).await;
    assert_eq!(answer["ret"], 200, "{answer}");
    assert_eq!(avatar_path(strict.profile(&token, &other).await), rendered);
    // A picture it has not seen is decoded, and refused.
    let new = host.serve("b.jpg", "image/jpeg", jpeg(64, 64, [200, 0, 0]));
    let refused = strict.update_head_img(&token, &other, &new).await;
    assert_eq!(refused["data"]["code"], "image-too-large", "{refused}");
    drop(temp);
}

/// A token, its account, and the URL of a blue picture served with ETag `"v1"`.
async fn account_and_tagged_picture(app: &TestApp, host: &ImageHost) -> (String, String, String) {
    let (token, app_id) = account(app).await;
    let blue = jpeg(64, 64, [10, 120, 230]);
    let url = host.serve_tagged("tagged.jpg", "image/jpeg", blue, Some("\"v1\""));
    (token, app_id, url)
}

/// A URL whose server gave a strong ETag is asked again with If-None-Match: a
/// 304 puts back the avatar of the bytes it sent before, with no download (a
/// real change, with its history row, or none when it is still the account's
/// avatar); new bytes under a new ETag are fetched and rendered.
#[tokio::test]
async fn a_url_asked_again_is_revalidated_by_its_etag() {
    let app = spawn_app().await;
    let host = ImageHost::start().await;
    let (token, app_id, url) = account_and_tagged_picture(&app, &host).await;
    let other = host.serve("other.jpg", "image/jpeg", jpeg(64, 64, [200, 0, 0]));

    assert_eq!(app.update_head_img(&token, &app_id, &url).await["ret"], 200);
    let first = avatar_base(&app.profile(&token, &app_id).await);
    assert_eq!(
        app.update_head_img(&token, &app_id, &other).await["ret"],
        200
    );
    let history = app.history_len(&app_id).await;
    let answer = app.update_head_img(&token, &app_id, &url).await;
    assert_eq!(answer["ret"], 200, "{answer}");
    assert_eq!(avatar_base(&app.profile(&token, &app_id).await), first);
    assert_eq!(app.history_len(&app_id).await, history + 1);
    assert_eq!(
        host.conditions(),
        [None, None, Some("\"v1\"".to_owned())],
        "asked the second time only"
    );
    assert_eq!(host.not_modified(), 1);
    // Again while it is the account's avatar: a 304, and no change to record.
    let answer = app.update_head_img(&token, &app_id, &url).await;
    assert_eq!(answer["ret"], 200, "{answer}");
    assert_eq!(avatar_base(&app.profile(&token, &app_id).await), first);
    assert_eq!(app.history_len(&app_id).await, history + 1);
    assert_eq!(host.not_modified(), 2);

    // The picture changes, and its ETag with it: downloaded and rendered.
    let green = jpeg(64, 64, [20, 200, 40]);
    host.serve_tagged("tagged.jpg", "image/jpeg", green, Some("\"v2\""));
    assert_eq!(app.update_head_img(&token, &app_id, &url).await["ret"], 200);
    let second = app.profile(&token, &app_id).await;
    assert_ne!(avatar_base(&second), first);
    let small = app
        .client
        .get(format!("{}/64", avatar_base(&second)))
        .send()
        .await
        .unwrap();
    let small = decode(&small.bytes().await.unwrap());
    assert!(close(small.get_pixel(32, 32), [20, 200, 40]));
    assert_eq!(host.not_modified(), 2);
    assert_eq!(host.conditions()[4], Some("\"v1\"".to_owned()));
}

/// A 304 for the avatar the account had when the update arrived, but another
/// update of the account committed while this one waited for its turn: the
/// account is moved back, as the later of the two. (Read before the turn, the
/// account's avatar looked unchanged, and the update wrote nothing.)
#[tokio::test]
async fn a_304_after_an_update_that_went_first_is_a_change() {
    let app = spawn_app().await;
    let host = ImageHost::start().await;
    let (token, app_id, url) = account_and_tagged_picture(&app, &host).await;
    assert_eq!(app.update_head_img(&token, &app_id, &url).await["ret"], 200);
    let tagged = avatar_base(&app.profile(&token, &app_id).await);
    let history = app.history_len(&app_id).await;

    // A slow picture (answered a second later) takes the account's turn; the
    // tagged URL comes in while it downloads.
    host.serve("slow.jpg", "image/jpeg", jpeg(64, 64, [200, 0, 0]));
    let slow = format!("{}/delayed/slow.jpg", host.base);
    let first = app.update_head_img(&token, &app_id, &slow);
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        app.update_head_img(&token, &app_id, &url).await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first["ret"], 200, "{first}");
    assert_eq!(second["ret"], 200, "{second}");
    assert_eq!(host.not_modified(), 1);
    assert_eq!(avatar_base(&app.profile(&token, &app_id).await), tagged);
    assert_eq!(app.history_len(&app_id).await, history + 2);
}

/// Only a strong ETag stands for the bytes. A weak one (`W/"…"`) promises
/// equivalent content: its URL is downloaded again every time, so new bytes
/// under the same weak ETag still give a new avatar. Nor is an ETag kept that
/// came through a redirect, whose target may be another next time.
#[tokio::test]
async fn weak_and_redirected_etags_are_not_trusted() {
    let app = spawn_app().await;
    let host = ImageHost::start().await;
    let (token, app_id) = account(&app).await;
    let weak = Some("W/\"same\"");
    let url = host.serve_tagged("weak.jpg", "image/jpeg", jpeg(64, 64, [10, 120, 230]), weak);
    assert_eq!(app.update_head_img(&token, &app_id, &url).await["ret"], 200);
    let first = avatar_base(&app.profile(&token, &app_id).await);
    host.serve_tagged("weak.jpg", "image/jpeg", jpeg(64, 64, [20, 200, 40]), weak);
    assert_eq!(app.update_head_img(&token, &app_id, &url).await["ret"], 200);
    assert_ne!(avatar_base(&app.profile(&token, &app_id).await), first);
    assert_eq!(host.not_modified(), 0);

    let strong = Some("\"r1\"");
    host.serve_tagged("moved.jpg", "image/jpeg", jpeg(64, 64, [200, 0, 0]), strong);
    let redirect = format!("{}/redirect/1/moved.jpg", host.base);
    for _ in 0..2 {
        assert_eq!(
            app.update_head_img(&token, &app_id, &redirect).await["ret"],
            200
        );
    }
    assert!(host.conditions().iter().all(Option::is_none));
    assert_eq!(host.conditions().len(), 6);
}
