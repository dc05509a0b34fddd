//! The contact-card QR picture (`personal/getQrCode`): a white card holding a
//! scannable QR code of the account's contact link, with its current avatar in
//! the centre. No text is drawn (no font is shipped).
//!
//! # What the code says
//!
//! WeChat's own "My QR Code" (二维码名片) encodes `https://u.wechat.com/<id>`,
//! sometimes with a `?s=<n>` share-source suffix. Examples decoded from real
//! codes in public repositories (e.g. salamander-mh/PyQrCode's README, a pyzbar
//! decode: `https://u.wechat.com/MAjIIa7vj14B0HonaXPcZMA`; a zbarlight script
//! listing `https://u.wechat.com/IMuRawb-1GPWRTXrg_EVEuc`, `…/MELUOLu3h0BAxtYZavZp_i4`;
//! more in contact pages: `EA6-1zRnGREBCQUQobmfyDk`, `EPDjgRrQutXUU-K1XzT9X_0`,
//! `EHdR-i5qhVaDiXuKJ36mqZQ`, `MLB4bqkwRqFx4Olc1YASELw?s=2`, `kJUeofCrP0oA6Fgc0Nt28DU?s=3`)
//! all share one shape: the `<id>` is always 23 characters of unpadded
//! base64url, i.e. exactly 17 bytes, and the first byte's low nibble is always
//! 0 (0x10, 0x20, 0x30 and once 0x90). [`contact_card_content`] follows that
//! shape: a header byte of 0x10/0x20/0x30 and 16 opaque bytes, no suffix.

use base64::Engine;
use image::RgbImage;
use image::imageops;
use qrcode::EcLevel;
use sha2::{Digest, Sha256};

use super::error::ImageError;
use super::qr::{self, QUIET_MODULES};
use super::{ImageLimits, decode, variants};

/// Contact links are `https://u.wechat.com/<id>`.
const CONTENT_PREFIX: &str = "https://u.wechat.com/";

/// Largest side of the card; a contact link (44 bytes → version 5 at level H,
/// 37 modules) gets 10 px modules → 450 px.
const CARD_MAX_SIDE: u32 = 480;

/// The logo box (white border + avatar) spans at most this share of the
/// symbol's width, in percent: 9 of 37 modules for a contact link, about 6 %
/// of the symbol's area, well inside the ~30 % of codewords level H restores
/// (a unit test flips every module under the box and still decodes).
const LOGO_MAX_PERCENT: usize = 28;

/// Caps for the avatar picture. Callers pass a stored 96/132 px variant; the
/// `0` variant (≤ 640 px) must work too. Anything else is refused before decoding.
const AVATAR_LIMITS: ImageLimits = ImageLimits {
    max_side: 2048,
    max_pixels: 2048 * 2048,
    max_alloc: 64 * 1024 * 1024,
};

/// The content of an account's contact QR code: `https://u.wechat.com/<id>`,
/// `<id>` being 23 base64url characters (17 bytes), shaped like WeChat's own
/// (see the module comment). A pure function of `seed`, which should be
/// secret-derived (e.g. an HMAC of the wxid with a server key) so that ids can
/// be neither guessed nor traced back to the wxid; any length works, it is
/// hashed with SHA-256 first.
pub fn contact_card_content(seed: &[u8]) -> String {
    let hash = Sha256::digest(seed);
    let mut id = [0u8; 17];
    // The header's high nibble is 1, 2 or 3 (first character E, I or M), as in
    // the real codes seen; its low nibble is 0.
    id[0] = 0x10 * (1 + hash[16] % 3);
    id[1..].copy_from_slice(&hash[..16]);
    let mut content = String::with_capacity(CONTENT_PREFIX.len() + 23);
    content.push_str(CONTENT_PREFIX);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(id, &mut content);
    content
}

/// The contact card: a QR code of `content` at error-correction level H with
/// the avatar (`avatar_jpeg`, any accepted format, normally our stored 132 or
/// 96 px JPEG variant) in the centre on a white border, as a baseline JPEG of
/// about 450 px and a few tens of KB. Same inputs → same bytes.
///
/// Errors: the avatar's decoding errors ([`ImageError::Empty`],
/// [`ImageError::UnsupportedFormat`], [`ImageError::Corrupt`], …), or
/// [`ImageError::Internal`] when `content` does not fit in a QR code.
pub fn contact_card_jpeg(content: &str, avatar_jpeg: &[u8]) -> Result<Vec<u8>, ImageError> {
    let code = qr::encode(content, EcLevel::H)?;
    let module_px = qr::module_px(code.width(), CARD_MAX_SIDE);
    let logo = LogoBox::for_width(code.width());

    // The avatar is decoded before drawing anything, so bad input fails fast.
    let box_px = logo.len * module_px;
    let border = module_px;
    let avatar_side = box_px.saturating_sub(2 * border).max(1);
    let avatar = avatar_square(avatar_jpeg, avatar_side)?;

    let mut card = qr::draw_rgb(&code, module_px);
    let box_origin = (QUIET_MODULES + logo.start) * module_px;
    fill_white(&mut card, box_origin, box_px);
    let avatar_origin = i64::from(box_origin + (box_px - avatar_side) / 2);
    imageops::replace(&mut card, &avatar, avatar_origin, avatar_origin);

    let (w, h) = card.dimensions();
    qr::encode_jpeg(card.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)
}

/// The square of modules covered by the logo, centred on the symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogoBox {
    /// First covered module, on both axes (symbol coordinates, no quiet zone).
    start: u32,
    /// Covered modules per side (odd, so the box is exactly centred).
    len: u32,
}

impl LogoBox {
    /// The box for a symbol `width` modules wide (always odd: 4·version + 17).
    /// At most [`LOGO_MAX_PERCENT`] of the width, and never reaching the finder
    /// patterns, their separators, the timing patterns or the format
    /// information (rows and columns 0–8 and the last 8).
    fn for_width(width: usize) -> Self {
        // At most 177 modules, so the casts are lossless.
        let width = width as u32;
        let centre = width / 2;
        let by_share = (width * LOGO_MAX_PERCENT as u32 / 100).saturating_sub(1) / 2;
        let by_function_patterns = centre.saturating_sub(9);
        let half = by_share.min(by_function_patterns);
        LogoBox {
            start: centre - half,
            len: 2 * half + 1,
        }
    }
}

/// Decode the avatar, flatten it onto white, cut its centre square and resize
/// it to `side`×`side`.
fn avatar_square(bytes: &[u8], side: u32) -> Result<RgbImage, ImageError> {
    let decoded = decode::decode(bytes, &AVATAR_LIMITS)?;
    let mut image = decoded.image.into_pixels();
    image.apply_orientation(decoded.orientation);
    let rgb = variants::flatten_to_rgb8(image);
    let (w, h) = rgb.dimensions();
    if w == 0 || h == 0 {
        return Err(ImageError::Corrupt {
            format: "RGB",
            detail: format!("zero dimension {w}x{h}"),
        });
    }
    variants::centre_square(&rgb, side)
}

/// Paint a `side`×`side` white square whose top-left corner is at (`at`, `at`).
fn fill_white(card: &mut RgbImage, at: u32, side: u32) {
    let row_len = card.width() as usize * 3;
    let (at, side) = (at as usize, side as usize);
    for row in card.chunks_exact_mut(row_len).skip(at).take(side) {
        row[at * 3..(at + side) * 3].fill(255);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::qr::tests::{assert_is_jpeg, scan_gray, scan_jpeg};
    use crate::imaging::{AvatarSize, default_avatar};

    fn avatar_132() -> Vec<u8> {
        default_avatar("wxid_card_test")
            .get(AvatarSize::S132)
            .jpeg
            .to_vec()
    }

    fn jpeg_of(image: &RgbImage) -> Vec<u8> {
        let (w, h) = image.dimensions();
        qr::encode_jpeg(image.as_raw(), w, h, jpeg_encoder::ColorType::Rgb).unwrap()
    }

    #[test]
    fn content_is_shaped_like_a_wechat_contact_link() {
        for seed in [&b""[..], b"x", &[0xAB; 32], b"wxid_abcdefghijklmn"] {
            let content = contact_card_content(seed);
            let id = content.strip_prefix("https://u.wechat.com/").unwrap();
            assert_eq!(id.len(), 23, "{content}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{content}"
            );
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(id)
                .unwrap();
            assert_eq!(bytes.len(), 17);
            assert!([0x10, 0x20, 0x30].contains(&bytes[0]), "{content}");
            assert!(id.starts_with(['E', 'I', 'M']), "{content}");
        }
    }

    #[test]
    fn real_ids_decode_to_the_same_shape() {
        // Ids taken from real WeChat codes (see the module comment).
        for id in [
            "EDsR9xYbS5mbbRlQ5oK6YKQ",
            "MAjIIa7vj14B0HonaXPcZMA",
            "IMuRawb-1GPWRTXrg_EVEuc",
            "EHdR-i5qhVaDiXuKJ36mqZQ",
        ] {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(id)
                .unwrap();
            assert_eq!(bytes.len(), 17, "{id}");
            assert_eq!(bytes[0] & 0x0F, 0, "{id}");
        }
    }

    #[test]
    fn content_is_stable_and_seed_dependent() {
        let a = contact_card_content(b"seed-a");
        assert_eq!(a, contact_card_content(b"seed-a"));
        assert_ne!(a, contact_card_content(b"seed-b"));
        // Pinned: a change here changes every account's contact link.
        assert_eq!(
            contact_card_content(b"wxid_card_test"),
            "https://u.wechat.com/EHtxUvnbIfg-VBK7rmuTKC8"
        );
    }

    #[test]
    fn card_decodes_back_to_its_content_with_the_avatar_in_the_centre() {
        let content = contact_card_content(b"wxid_card_test");
        let jpeg = contact_card_jpeg(&content, &avatar_132()).unwrap();
        assert_is_jpeg(&jpeg);
        assert!(jpeg.len() < 60_000, "{} bytes", jpeg.len());
        assert_eq!(scan_jpeg(&jpeg), vec![content]);
    }

    #[test]
    fn the_96_px_variant_works_too() {
        let content = contact_card_content(b"another");
        let avatar = default_avatar("another").get(AvatarSize::S96).jpeg.to_vec();
        let jpeg = contact_card_jpeg(&content, &avatar).unwrap();
        assert_eq!(scan_jpeg(&jpeg), vec![content]);
    }

    #[test]
    fn avatar_is_pasted_in_the_centre_with_a_white_border() {
        let red = jpeg_of(&RgbImage::from_pixel(132, 132, image::Rgb([220, 20, 20])));
        let content = contact_card_content(b"red");
        let jpeg = contact_card_jpeg(&content, &red).unwrap();
        let card = image::load_from_memory(&jpeg).unwrap().to_rgb8();
        let (w, h) = card.dimensions();
        assert_eq!(w, h);
        assert!((400..=CARD_MAX_SIDE).contains(&w), "side {w}");

        let code = qr::encode(&content, EcLevel::H).unwrap();
        let module_px = qr::module_px(code.width(), CARD_MAX_SIDE);
        let logo = LogoBox::for_width(code.width());
        let box_origin = (QUIET_MODULES + logo.start) * module_px;
        let box_px = logo.len * module_px;

        let centre = card.get_pixel(w / 2, h / 2).0;
        assert!(
            centre[0] > 180 && centre[1] < 70 && centre[2] < 70,
            "{centre:?}"
        );
        // The border ring, half a module in from the box's edge, is white.
        let ring = box_origin + module_px / 2;
        for i in box_origin + 2..box_origin + box_px - 2 {
            for (x, y) in [(i, ring), (ring, i)] {
                let p = card.get_pixel(x, y).0;
                assert!(p.iter().all(|&c| c > 200), "({x},{y}) {p:?}");
            }
        }
        assert_eq!(scan_jpeg(&jpeg), vec![content]);
    }

    #[test]
    fn worst_case_avatars_still_scan() {
        let noise = RgbImage::from_fn(132, 132, |x, y| {
            let v = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) as u8;
            image::Rgb([v, v.rotate_left(3), v.rotate_left(5)])
        });
        let black = RgbImage::from_pixel(96, 96, image::Rgb([0, 0, 0]));
        let wide = RgbImage::from_pixel(300, 100, image::Rgb([10, 10, 10]));
        for (i, avatar) in [noise, black, wide].iter().enumerate() {
            let content = contact_card_content(&[i as u8]);
            let jpeg = contact_card_jpeg(&content, &jpeg_of(avatar)).unwrap();
            assert_eq!(scan_jpeg(&jpeg), vec![content], "avatar {i}");
        }
    }

    #[test]
    fn every_module_under_the_logo_may_be_wrong() {
        // The logo box stays within what level H restores: flip every module
        // under it (the worst any logo can do) and the symbol still decodes,
        // for the contact-link size and the versions around it.
        for len in [10, 30, 44, 60, 80, 120, 200] {
            let content: String = "u".repeat(len);
            let code = qr::encode(&content, EcLevel::H).unwrap();
            let logo = LogoBox::for_width(code.width());
            let mut image = qr::draw(&code, 4);
            let (from, to) = (
                QUIET_MODULES + logo.start,
                QUIET_MODULES + logo.start + logo.len,
            );
            for (x, y, p) in image.enumerate_pixels_mut() {
                if (from..to).contains(&(x / 4)) && (from..to).contains(&(y / 4)) {
                    p.0[0] = 255 - p.0[0];
                }
            }
            assert_eq!(scan_gray(&image), vec![content], "{:?}", code.version());
        }
    }

    #[test]
    fn logo_box_keeps_off_the_function_patterns() {
        for version in 1..=40usize {
            let width = 4 * version + 17;
            let logo = LogoBox::for_width(width);
            assert_eq!(logo.len % 2, 1);
            assert_eq!(logo.start * 2 + logo.len, width as u32, "centred");
            assert!(logo.start >= 9, "v{version}: {logo:?}");
            assert!(logo.len as usize * 100 <= width * LOGO_MAX_PERCENT);
        }
        // A contact link: version 5, 37 modules, a 9-module box.
        let code = qr::encode(&contact_card_content(b"x"), EcLevel::H).unwrap();
        assert_eq!(code.width(), 37);
        assert_eq!(LogoBox::for_width(37), LogoBox { start: 14, len: 9 });
    }

    #[test]
    fn card_is_deterministic() {
        let content = contact_card_content(b"same");
        let avatar = avatar_132();
        assert_eq!(
            contact_card_jpeg(&content, &avatar).unwrap(),
            contact_card_jpeg(&content, &avatar).unwrap()
        );
    }

    #[test]
    fn bad_avatars_are_clear_errors() {
        let content = contact_card_content(b"bad");
        let good = avatar_132();
        let cases: [(&[u8], &str); 4] = [
            (b"", "image-empty"),
            (b"not a picture at all", "image-unsupported-format"),
            (b"%PDF-1.7 ...", "image-unsupported-format"),
            (&good[..good.len() / 2], "image-corrupt"),
        ];
        for (bytes, code) in cases {
            let err = contact_card_jpeg(&content, bytes).unwrap_err();
            assert_eq!(err.code(), code, "{err:?}");
        }
        // A header claiming a huge picture is refused before decoding.
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(RgbImage::new(1, 1))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32fast::hash(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = contact_card_jpeg(&content, &png).unwrap_err();
        assert_eq!(err.code(), "image-too-large", "{err:?}");
    }

    #[test]
    fn too_long_content_is_an_internal_error() {
        let err = contact_card_jpeg(&"x".repeat(2000), &avatar_132()).unwrap_err();
        assert!(matches!(err, ImageError::Internal(_)), "{err:?}");
    }
}
