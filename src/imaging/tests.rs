//! Tests generate every input in code with the `image` crate (plus small
//! byte-level helpers for Exif, PNG IHDR and a CMYK JPEG); no fixture files.

use std::io::Cursor;

use image::{
    DynamicImage, ImageBuffer, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage, codecs::gif::GifEncoder,
};

use super::*;

// ---------------------------------------------------------------- helpers

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, format)
        .unwrap_or_else(|e| panic!("encoding test input as {format:?}: {e}"));
    out.into_inner()
}

fn render(bytes: &[u8]) -> RenderedAvatar {
    match render_avatar(bytes, &ImageLimits::default()) {
        Ok(avatar) => avatar,
        Err(e) => panic!("render failed: {e} ({})", e.code()),
    }
}

fn render_err(bytes: &[u8]) -> ImageError {
    match render_avatar(bytes, &ImageLimits::default()) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn decode_jpeg(bytes: &[u8]) -> RgbImage {
    image::load_from_memory_with_format(bytes, ImageFormat::Jpeg)
        .expect("output is a valid JPEG")
        .to_rgb8()
}

/// Every variant is a JPEG of exactly its advertised side, in `ALL` order.
fn assert_variants(avatar: &RenderedAvatar, big_side: u32) {
    assert_eq!(avatar.variants.len(), 5);
    for (variant, size) in avatar.variants.iter().zip(AvatarSize::ALL) {
        assert_eq!(variant.size, size);
        let expected = if size == AvatarSize::Big {
            big_side
        } else {
            size.nominal_px()
        };
        assert_eq!(variant.side, expected, "{size:?}");
        assert!(variant.jpeg.starts_with(&[0xFF, 0xD8, 0xFF]));
        let decoded = decode_jpeg(&variant.jpeg);
        assert_eq!(decoded.dimensions(), (expected, expected), "{size:?}");
    }
}

fn big(avatar: &RenderedAvatar) -> RgbImage {
    decode_jpeg(&avatar.get(AvatarSize::Big).jpeg)
}

#[track_caller]
fn assert_near(actual: &Rgb<u8>, expected: [u8; 3], tolerance: u8) {
    let ok = actual
        .0
        .iter()
        .zip(expected)
        .all(|(a, e)| a.abs_diff(e) <= tolerance);
    assert!(
        ok,
        "pixel {:?} not within {tolerance} of {expected:?}",
        actual.0
    );
}

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const WHITE: [u8; 3] = [255, 255, 255];

/// Top half red, bottom half blue.
fn red_over_blue(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |_, y| Rgb(if y < h / 2 { RED } else { BLUE }))
}

/// A deterministic xorshift64 stream, for noise and mutations.
pub(super) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// Pseudo-random noise (deterministic), so JPEG/PNG files have real entropy data.
fn noise(w: u32, h: u32) -> RgbImage {
    let mut next = xorshift(0x2545_F491_4F6C_DD1D);
    RgbImage::from_fn(w, h, |_, _| {
        let [a, b, c, ..] = next().to_le_bytes();
        Rgb([a, b, c])
    })
}

/// A real 1×1 PNG whose IHDR is patched to claim `w`×`h` (CRC fixed up).
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut png = encode(
        &DynamicImage::ImageRgb8(RgbImage::new(1, 1)),
        ImageFormat::Png,
    );
    // 8 signature + 4 length + "IHDR" → width at 16, height at 20, CRC at 29.
    assert_eq!(&png[12..16], b"IHDR");
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// Insert an APP1 Exif segment carrying only the orientation tag right after SOI.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2A"); // big-endian TIFF header
    tiff.extend_from_slice(&8u32.to_be_bytes()); // IFD0 offset
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD

    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let len = u16::try_from(payload.len() + 2).unwrap();

    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Minimal baseline JPEG, 8×8, four components (Adobe APP14 transform 0 = CMYK),
/// every block flat, DC-only Huffman coding. `cmyk` are the stored sample
/// values (Adobe writes them inverted: 255 = no ink).
fn cmyk_jpeg(cmyk: [u8; 4]) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    // APP14 "Adobe", version 100, flags 0, flags 0, transform 0.
    out.extend_from_slice(&[0xFF, 0xEE, 0, 14]);
    out.extend_from_slice(b"Adobe");
    out.extend_from_slice(&[0, 100, 0, 0, 0, 0, 0]);
    // DQT: table 0, all ones.
    out.extend_from_slice(&[0xFF, 0xDB, 0, 67, 0]);
    out.extend_from_slice(&[1; 64]);
    // SOF0: 8-bit, 8×8, 4 components, no subsampling, table 0.
    out.extend_from_slice(&[0xFF, 0xC0, 0, 20, 8, 0, 8, 0, 8, 4]);
    for id in 1..=4u8 {
        out.extend_from_slice(&[id, 0x11, 0]);
    }
    // DHT DC 0: categories 0..=11, 4-bit codes 0000..1011.
    let mut counts = [0u8; 16];
    counts[3] = 12;
    out.extend_from_slice(&[0xFF, 0xC4, 0, 2 + 1 + 16 + 12, 0x00]);
    out.extend_from_slice(&counts);
    out.extend_from_slice(&(0..12u8).collect::<Vec<_>>());
    // DHT AC 0: only EOB, 1-bit code "0".
    let mut counts = [0u8; 16];
    counts[0] = 1;
    out.extend_from_slice(&[0xFF, 0xC4, 0, 2 + 1 + 16 + 1, 0x10]);
    out.extend_from_slice(&counts);
    out.push(0x00);
    // SOS.
    out.extend_from_slice(&[0xFF, 0xDA, 0, 14, 4]);
    for id in 1..=4u8 {
        out.extend_from_slice(&[id, 0x00]);
    }
    out.extend_from_slice(&[0, 63, 0]);

    // Entropy-coded data: one MCU = one block per component.
    let mut bits: Vec<bool> = Vec::new();
    for value in cmyk {
        // Flat block: DC = 8·(v − 128) with unit quantisation.
        let dc = 8 * (i32::from(value) - 128);
        let category = 32 - dc.unsigned_abs().leading_zeros();
        for i in (0..4).rev() {
            bits.push(category >> i & 1 == 1);
        }
        let raw = if dc >= 0 {
            dc as u32
        } else {
            (dc + (1 << category) - 1) as u32
        };
        for i in (0..category).rev() {
            bits.push(raw >> i & 1 == 1);
        }
        bits.push(false); // EOB
    }
    while !bits.len().is_multiple_of(8) {
        bits.push(true);
    }
    for chunk in bits.chunks(8) {
        let byte = chunk.iter().fold(0u8, |acc, &b| acc << 1 | u8::from(b));
        out.push(byte);
        if byte == 0xFF {
            out.push(0x00);
        }
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

// ---------------------------------------------------------------- sizes

#[test]
fn avatar_size_labels() {
    let labels: Vec<_> = AvatarSize::ALL.iter().map(|s| s.label()).collect();
    assert_eq!(labels, ["0", "132", "96", "64", "46"]);
    let px: Vec<_> = AvatarSize::ALL.iter().map(|s| s.nominal_px()).collect();
    assert_eq!(px, [640, 132, 96, 64, 46]);
    for size in AvatarSize::ALL {
        assert_eq!(AvatarSize::from_label(size.label()), Some(size));
    }
    assert_eq!(AvatarSize::from_label("640"), None);
    assert_eq!(AvatarSize::from_label(""), None);
    let d = ImageLimits::default();
    assert_eq!(
        (d.max_side, d.max_pixels, d.max_alloc),
        (8192, 40_000_000, 256 << 20)
    );
}

// ---------------------------------------------------------------- formats

#[test]
fn every_accepted_format_gives_five_exact_jpegs() {
    let picture = DynamicImage::ImageRgb8(RgbImage::from_fn(300, 200, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    }));
    for format in [
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Gif,
        ImageFormat::WebP,
    ] {
        let bytes = encode(&picture, format);
        let avatar = render(&bytes);
        assert_variants(&avatar, 200);
        for variant in &avatar.variants {
            // No metadata: no Exif/XMP (APP1) or ICC (APP2) segment.
            let has = |needle: &[u8]| variant.jpeg.windows(needle.len()).any(|w| w == needle);
            assert!(!has(b"Exif\0\0") && !has(b"ICC_PROFILE") && !has(&[0xFF, 0xE1]));
        }
    }
}

#[test]
fn large_source_is_downscaled_to_640() {
    let picture = DynamicImage::ImageRgb8(RgbImage::from_pixel(1600, 1200, Rgb(GREEN)));
    let avatar = render(&encode(&picture, ImageFormat::Png));
    assert_variants(&avatar, 640);
    for variant in &avatar.variants {
        let img = decode_jpeg(&variant.jpeg);
        assert_near(img.get_pixel(variant.side / 2, variant.side / 2), GREEN, 8);
    }
}

#[test]
fn wide_source_is_cropped_to_the_centre() {
    // 1000×500: red | green (250..750) | blue. The centred 500×500 square is all green.
    let picture = RgbImage::from_fn(1000, 500, |x, _| {
        Rgb(match x {
            0..250 => RED,
            250..750 => GREEN,
            _ => BLUE,
        })
    });
    let avatar = render(&encode(&DynamicImage::ImageRgb8(picture), ImageFormat::Png));
    assert_variants(&avatar, 500);
    let out = big(&avatar);
    for x in [3, 250, 496] {
        assert_near(out.get_pixel(x, 250), GREEN, 12);
    }
    for variant in &avatar.variants[1..] {
        let img = decode_jpeg(&variant.jpeg);
        let s = variant.side;
        for x in [1, s / 2, s - 2] {
            assert_near(img.get_pixel(x, s / 2), GREEN, 16);
        }
    }
}

#[test]
fn tall_source_is_cropped_to_the_centre() {
    let picture = RgbImage::from_fn(300, 900, |_, y| {
        Rgb(match y {
            0..300 => RED,
            300..600 => GREEN,
            _ => BLUE,
        })
    });
    let avatar = render(&encode(&DynamicImage::ImageRgb8(picture), ImageFormat::Png));
    assert_variants(&avatar, 300);
    let out = big(&avatar);
    for y in [2, 150, 297] {
        assert_near(out.get_pixel(150, y), GREEN, 12);
    }
}

#[test]
fn tiny_source_is_not_upscaled_for_size_0() {
    let picture = DynamicImage::ImageRgb8(RgbImage::from_pixel(50, 50, Rgb(BLUE)));
    let avatar = render(&encode(&picture, ImageFormat::Png));
    // `0` stays 50×50; the fixed small sizes are still exactly N×N.
    assert_variants(&avatar, 50);
    let s132 = decode_jpeg(&avatar.get(AvatarSize::S132).jpeg);
    assert_near(s132.get_pixel(66, 66), BLUE, 12);
}

#[test]
fn one_pixel_source_works() {
    let picture = DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb(RED)));
    let avatar = render(&encode(&picture, ImageFormat::Png));
    assert_variants(&avatar, 1);
    assert_near(
        decode_jpeg(&avatar.get(AvatarSize::S46).jpeg).get_pixel(23, 23),
        RED,
        12,
    );
}

#[test]
fn transparency_is_flattened_onto_white() {
    // Left half fully transparent *black*, right half half-transparent red.
    let picture = RgbaImage::from_fn(100, 100, |x, _| {
        if x < 50 {
            Rgba([0, 0, 0, 0])
        } else {
            Rgba([255, 0, 0, 128])
        }
    });
    for format in [ImageFormat::Png, ImageFormat::WebP] {
        let avatar = render(&encode(&DynamicImage::ImageRgba8(picture.clone()), format));
        assert_variants(&avatar, 100);
        let out = big(&avatar);
        assert_near(out.get_pixel(10, 50), WHITE, 3);
        assert_near(out.get_pixel(90, 50), [255, 127, 127], 8);
    }
}

#[test]
fn flatten_is_exact() {
    let picture =
        RgbaImage::from_vec(3, 1, vec![0, 0, 0, 0, 10, 20, 30, 255, 255, 0, 0, 128]).unwrap();
    let rgb = variants::flatten_to_rgb8(DynamicImage::ImageRgba8(picture));
    assert_eq!(rgb.as_raw(), &[255, 255, 255, 10, 20, 30, 255, 127, 127]);
}

#[test]
fn gif_transparency_is_white() {
    let mut frame = RgbaImage::from_pixel(40, 40, Rgba([0, 0, 0, 0]));
    for y in 0..40 {
        for x in 20..40 {
            frame.put_pixel(x, y, Rgba([0, 0, 255, 255]));
        }
    }
    let avatar = render(&encode(&DynamicImage::ImageRgba8(frame), ImageFormat::Gif));
    let out = big(&avatar);
    assert_near(out.get_pixel(5, 20), WHITE, 3);
    assert_near(out.get_pixel(35, 20), BLUE, 12);
}

#[test]
fn sixteen_bit_png_works() {
    let picture: ImageBuffer<Rgba<u16>, Vec<u16>> = ImageBuffer::from_fn(80, 80, |x, _| {
        if x < 40 {
            Rgba([0, 65535, 0, 65535])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let bytes = encode(&DynamicImage::ImageRgba16(picture), ImageFormat::Png);
    assert_eq!(bytes[24], 16, "IHDR bit depth is 16");
    let avatar = render(&bytes);
    assert_variants(&avatar, 80);
    let out = big(&avatar);
    assert_near(out.get_pixel(10, 40), GREEN, 12);
    assert_near(out.get_pixel(70, 40), WHITE, 3);

    let rgb16: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_pixel(30, 60, Rgb([65535, 0, 0]));
    let avatar = render(&encode(&DynamicImage::ImageRgb16(rgb16), ImageFormat::Png));
    assert_variants(&avatar, 30);
    assert_near(big(&avatar).get_pixel(15, 15), RED, 12);
}

#[test]
fn grayscale_jpeg_works() {
    let picture =
        DynamicImage::ImageLuma8(image::GrayImage::from_pixel(70, 90, image::Luma([200])));
    let avatar = render(&encode(&picture, ImageFormat::Jpeg));
    assert_variants(&avatar, 70);
    assert_near(big(&avatar).get_pixel(35, 35), [200, 200, 200], 4);
}

#[test]
fn cmyk_jpeg_works() {
    // Adobe-inverted CMYK: C=0 ink (255), M=100% (0), Y=100% (0), K=0 ink (255) → red.
    let bytes = cmyk_jpeg([255, 0, 0, 255]);
    let avatar = render(&bytes);
    assert_variants(&avatar, 8);
    assert_near(big(&avatar).get_pixel(4, 4), RED, 12);

    // Cyan: C=100% (0), others none → (0, 255, 255).
    let avatar = render(&cmyk_jpeg([0, 255, 255, 255]));
    assert_near(big(&avatar).get_pixel(4, 4), [0, 255, 255], 12);
}

// ---------------------------------------------------------------- orientation

fn oriented_jpeg(orientation: u16) -> Vec<u8> {
    let jpeg = encode(
        &DynamicImage::ImageRgb8(red_over_blue(120, 120)),
        ImageFormat::Jpeg,
    );
    with_exif_orientation(&jpeg, orientation)
}

/// Colours at the middle of the top, bottom, left and right edges of the `0` variant.
fn edges(avatar: &RenderedAvatar) -> [Rgb<u8>; 4] {
    let out = big(avatar);
    let s = out.width();
    [
        *out.get_pixel(s / 2, 5),
        *out.get_pixel(s / 2, s - 6),
        *out.get_pixel(5, s / 2),
        *out.get_pixel(s - 6, s / 2),
    ]
}

#[test]
fn exif_orientation_is_applied() {
    // 1: as stored — red on top.
    let [top, bottom, ..] = edges(&render(&oriented_jpeg(1)));
    assert_near(&top, RED, 20);
    assert_near(&bottom, BLUE, 20);

    // 6: rotate 90° clockwise to display — the stored top (red) ends up on the right.
    let [_, _, left, right] = edges(&render(&oriented_jpeg(6)));
    assert_near(&left, BLUE, 20);
    assert_near(&right, RED, 20);

    // 8: rotate 90° counter-clockwise — red on the left.
    let [_, _, left, right] = edges(&render(&oriented_jpeg(8)));
    assert_near(&left, RED, 20);
    assert_near(&right, BLUE, 20);

    // 3: rotate 180° — blue on top.
    let [top, bottom, ..] = edges(&render(&oriented_jpeg(3)));
    assert_near(&top, BLUE, 20);
    assert_near(&bottom, RED, 20);
}

#[test]
fn exif_orientation_on_non_square_source() {
    // Stored 240 wide × 120 tall, top red / bottom blue; orientation 6 displays
    // it 120×240 with red on the right. The centre square keeps that.
    let jpeg = encode(
        &DynamicImage::ImageRgb8(red_over_blue(240, 120)),
        ImageFormat::Jpeg,
    );
    let avatar = render(&with_exif_orientation(&jpeg, 6));
    assert_variants(&avatar, 120);
    let [_, _, left, right] = edges(&avatar);
    assert_near(&left, BLUE, 20);
    assert_near(&right, RED, 20);
}

#[test]
fn malformed_exif_is_ignored() {
    let jpeg = encode(
        &DynamicImage::ImageRgb8(red_over_blue(64, 64)),
        ImageFormat::Jpeg,
    );
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE1, 0, 16];
    bytes.extend_from_slice(b"Exif\0\0MM\0\x2A\xFF\xFF\xFF\xFF");
    bytes.extend_from_slice(&jpeg[2..]);
    let [top, bottom, ..] = edges(&render(&bytes));
    assert_near(&top, RED, 20);
    assert_near(&bottom, BLUE, 20);
}

// ---------------------------------------------------------------- limits

#[test]
fn png_header_claiming_30000_square_is_refused() {
    let bytes = png_claiming(30000, 30000);
    assert!(bytes.len() < 200);
    let err = render_err(&bytes);
    assert!(
        matches!(
            err,
            ImageError::TooLarge {
                width: 30000,
                height: 30000,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "image-too-large");
    assert_eq!(
        err.message(),
        "图片尺寸过大: 30000x30000，上限为每边8192像素且不超过4000万像素"
    );
}

#[test]
fn side_and_pixel_caps_are_both_enforced() {
    // One side too long.
    let err = render_err(&png_claiming(9000, 10));
    assert!(
        matches!(
            err,
            ImageError::TooLarge {
                width: 9000,
                height: 10,
                ..
            }
        ),
        "{err:?}"
    );
    // Both sides fine, total pixels too many (7000² = 49 M > 40 M).
    let err = render_err(&png_claiming(7000, 7000));
    assert!(
        matches!(
            err,
            ImageError::TooLarge {
                width: 7000,
                height: 7000,
                ..
            }
        ),
        "{err:?}"
    );
    // Custom limits are honoured.
    let limits = ImageLimits {
        max_side: 100,
        max_pixels: 5000,
        max_alloc: 1 << 20,
    };
    let picture = DynamicImage::ImageRgb8(RgbImage::new(80, 80));
    let err = render_avatar(&encode(&picture, ImageFormat::Png), &limits).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::TooLarge {
                width: 80,
                height: 80,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn memory_cap_is_enforced_before_decoding() {
    let limits = ImageLimits {
        max_alloc: 10_000,
        ..ImageLimits::default()
    };
    let picture = DynamicImage::ImageRgb8(RgbImage::new(100, 100)); // 30 000 bytes decoded
    for format in [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Gif,
        ImageFormat::WebP,
    ] {
        let err = render_avatar(&encode(&picture, format), &limits).unwrap_err();
        assert_eq!(err.code(), "image-too-large", "{format:?}: {err:?}");
    }
}

#[test]
fn untracked_decoder_scratch_is_charged() {
    // 100×100 RGB decodes to 30 000 bytes.
    let picture = DynamicImage::ImageRgb8(noise(100, 100));
    let limits = |max_alloc| ImageLimits {
        max_alloc,
        ..ImageLimits::default()
    };

    // WebP: + w·h·4 scratch → needs 70 000.
    let webp = encode(&picture, ImageFormat::WebP);
    assert_eq!(
        render_avatar(&webp, &limits(60_000)).unwrap_err().code(),
        "image-too-large"
    );
    assert!(render_avatar(&webp, &limits(70_000)).is_ok());

    // Baseline JPEG: no scratch → 40 000 is enough.
    let jpeg = encode(&picture, ImageFormat::Jpeg);
    assert_eq!(decode::jpeg_progressive_components(&jpeg), None);
    assert!(render_avatar(&jpeg, &limits(40_000)).is_ok());
    // The same header marked progressive (SOF2) is charged 2 bytes per sample
    // per component (+60 000) and refused before any decoding.
    let mut progressive = jpeg.clone();
    let sof = progressive
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("SOF0");
    progressive[sof + 1] = 0xC2;
    assert_eq!(decode::jpeg_progressive_components(&progressive), Some(3));
    let err = render_avatar(&progressive, &limits(40_000)).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::TooMuchMemory {
                needed: Some(90_000),
                ..
            }
        ),
        "{err:?}"
    );
}

/// Converting a 16-bit, grey or alpha picture to RGB8 takes a second buffer
/// while the decoded one still lives; the reservation counts it. A 16-bit RGBA
/// picture whose decoded buffer alone fits the budget, but not with its RGB8
/// copy, is refused before decoding; RGB8 and RGBA8 pictures of the same
/// decoded size (converted in place) are not.
#[test]
fn conversion_buffer_is_charged_to_the_decode_budget() {
    use image::Luma;
    let (w, h) = (300u32, 400u32);
    let pixels = u64::from(w * h);
    let rgba16: ImageBuffer<Rgba<u16>, Vec<u16>> = ImageBuffer::from_fn(w, h, |x, y| {
        Rgba([
            (x * 200) as u16,
            (y * 150) as u16,
            40_000,
            if x < w / 2 { 65535 } else { 0 },
        ])
    });
    let png16 = encode(&DynamicImage::ImageRgba16(rgba16.clone()), ImageFormat::Png);
    // Decoded: 8 bytes a pixel. With the RGB8 copy: 11 and a stripe.
    let budget = pixels * 8 + pixels; // room for the decode, not for the copy
    let limits = ImageLimits {
        max_alloc: budget,
        ..ImageLimits::default()
    };
    let err = render_avatar(&png16, &limits).unwrap_err();
    match err {
        ImageError::TooMuchMemory {
            needed: Some(needed),
            max_alloc,
        } => {
            assert_eq!(max_alloc, budget);
            assert!(needed >= pixels * 11, "{needed}");
        }
        other => panic!("expected the budget error, got {other:?}"),
    }
    assert_eq!(
        render_avatar(&png16, &limits).unwrap_err().code(),
        "image-too-large"
    );
    let roomy = ImageLimits {
        max_alloc: pixels * 14,
        ..ImageLimits::default()
    };
    let rendered = render_avatar(&png16, &roomy).expect("fits with its copy");

    // The stripes give the same picture as converting the whole at once.
    let whole = {
        let rgba8 = DynamicImage::ImageRgba16(rgba16).into_rgba8();
        let (w, h) = rgba8.dimensions();
        RgbImage::from_fn(w, h, |x, y| {
            let [r, g, b, a] = rgba8.get_pixel(x, y).0;
            let a = u32::from(a);
            let blend = |v: u8| ((u32::from(v) * a + 255 * (255 - a) + 127) / 255) as u8;
            Rgb([blend(r), blend(g), blend(b)])
        })
    };
    assert_eq!(
        rendered.content_id(),
        render_rgb(whole).unwrap().content_id()
    );
    let grey16: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_fn(w, 130, |x, y| Luma([((x * 97 + y * 31) * 50) as u16]));
    let striped = variants::flatten_to_rgb8(DynamicImage::ImageLuma16(grey16.clone()));
    assert_eq!(striped, DynamicImage::ImageLuma16(grey16).into_rgb8());

    // 8-bit RGB(A) of the same decoded size is converted in place: it fits.
    let rgba8 = encode(
        &DynamicImage::ImageRgba8(RgbaImage::from_pixel(w * 2, h, Rgba([9, 99, 199, 128]))),
        ImageFormat::Png,
    );
    assert!(render_avatar(&rgba8, &limits).is_ok());
}

#[test]
fn jpeg_header_claiming_huge_dimensions_is_refused() {
    let mut jpeg = encode(
        &DynamicImage::ImageRgb8(RgbImage::new(16, 16)),
        ImageFormat::Jpeg,
    );
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline SOF0");
    // FFC0, length(2), precision(1), height(2), width(2)
    jpeg[sof + 5..sof + 7].copy_from_slice(&60000u16.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&50000u16.to_be_bytes());
    let err = render_err(&jpeg);
    assert!(
        matches!(
            err,
            ImageError::TooLarge {
                width: 50000,
                height: 60000,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn gif_with_a_thousand_frames_uses_the_first() {
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut bytes);
        let frames = (0..1000).map(|i| {
            let colour = if i == 0 {
                Rgba([255, 0, 0, 255])
            } else {
                Rgba([0, 0, 255, 255])
            };
            image::Frame::new(RgbaImage::from_pixel(16, 16, colour))
        });
        encoder.encode_frames(frames).expect("encode gif");
    }
    let started = std::time::Instant::now();
    let avatar = render(&bytes);
    assert_variants(&avatar, 16);
    assert_near(big(&avatar).get_pixel(8, 8), RED, 12);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

// ---------------------------------------------------------------- hostile input

#[test]
fn truncated_files_are_corrupt_not_panics() {
    let picture = DynamicImage::ImageRgb8(noise(64, 64));
    for format in [
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Gif,
        ImageFormat::WebP,
    ] {
        let bytes = encode(&picture, format);
        let half = &bytes[..bytes.len() / 2];
        let err = render_err(half);
        assert_eq!(err.code(), "image-corrupt", "{format:?}: {err:?}");
        assert_eq!(err.message(), "图片数据损坏或不完整");
    }
}

#[test]
fn every_prefix_and_bit_flip_is_handled() {
    let picture = DynamicImage::ImageRgb8(noise(24, 24));
    let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
    for format in [
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Gif,
        ImageFormat::WebP,
    ] {
        let bytes = encode(&picture, format);
        let step = (bytes.len() / 97).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            let _ = render_avatar(&bytes[..cut], &ImageLimits::default());
        }
        for _ in 0..150 {
            let mut damaged = bytes.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % damaged.len();
                damaged[i] ^= 1 << (next() % 8);
            }
            let _ = render_avatar(&damaged, &ImageLimits::default());
        }
    }
}

#[test]
fn jpeg_end_is_found_by_walking_the_segments() {
    use decode::JpegEnd;
    let jpeg = encode(&DynamicImage::ImageRgb8(noise(32, 32)), ImageFormat::Jpeg);
    assert_eq!(decode::jpeg_end(&jpeg), JpegEnd::Marker);
    let mut trailing = jpeg.clone();
    trailing.extend_from_slice(b"trailing junk");
    assert_eq!(decode::jpeg_end(&trailing), JpegEnd::Marker);
    render(&trailing);
    assert_eq!(decode::jpeg_end(&jpeg[..jpeg.len() - 2]), JpegEnd::Missing);
    // An EOI inside an APP segment (e.g. an Exif thumbnail) does not count.
    let mut app = vec![0xFF, 0xD8, 0xFF, 0xE1, 0, 4, 0xFF, 0xD9];
    app.extend_from_slice(&jpeg[2..jpeg.len() / 2]);
    assert_eq!(decode::jpeg_end(&app), JpegEnd::Missing);
    // Headers only: no scan.
    let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    assert_eq!(decode::jpeg_end(&jpeg[..sos]), JpegEnd::Broken);
    assert_eq!(decode::jpeg_end(&jpeg[..sos + 5]), JpegEnd::Broken);
}

/// A JPEG is judged by its scanlines, not by its end-of-image marker: camera
/// files that omit the marker are whole pictures and are accepted (with the
/// same pixels as with the marker), in both decode paths (the full decoder
/// and shrink-on-load for large pictures); a JPEG cut short anywhere in its
/// data is refused, with or without Exif in front.
#[test]
fn jpeg_without_end_marker_is_accepted_and_cut_jpeg_is_refused() {
    let small = encode(&DynamicImage::ImageRgb8(noise(200, 150)), ImageFormat::Jpeg);
    let large = encode(
        &DynamicImage::ImageRgb8(RgbImage::from_fn(1600, 1400, |x, y| {
            Rgb([(x / 7) as u8, (y / 6) as u8, ((x + y) / 12) as u8])
        })),
        ImageFormat::Jpeg,
    );
    for whole in [small, large] {
        assert_eq!(&whole[whole.len() - 2..], [0xFF, 0xD9]);
        let no_eoi = &whole[..whole.len() - 2];
        let with = render(&whole);
        let without = render(no_eoi);
        assert_eq!(
            with.content_id(),
            without.content_id(),
            "the same pixels without the end-of-image marker"
        );
        // With a camera's Exif block in front, and trailing fill bytes.
        let mut camera = vec![0xFF, 0xD8, 0xFF, 0xE1, 0, 8];
        camera.extend_from_slice(b"Exif\0\0");
        camera.extend_from_slice(&no_eoi[2..]);
        render(&camera);

        // Cut in the entropy-coded data: refused, whatever the cut.
        let sos = whole.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        let data = whole.len() - sos;
        for fraction in [0.1, 0.5, 0.8] {
            let cut = sos + 20 + (data as f64 * fraction) as usize;
            let err = render_err(&whole[..cut]);
            assert_eq!(err.code(), "image-corrupt", "cut at {cut}: {err:?}");
            assert_eq!(err.message(), "图片数据损坏或不完整");
            let err = render_err(&camera[..cut]);
            assert_eq!(err.code(), "image-corrupt", "cut at {cut}: {err:?}");
        }
    }
}

#[test]
fn empty_input() {
    let err = render_err(&[]);
    assert!(matches!(err, ImageError::Empty));
    assert_eq!(err.code(), "image-empty");
    assert_eq!(err.message(), "图片为空");
}

#[test]
fn other_formats_are_refused_by_name() {
    let tiff_le = b"II*\0\x08\0\0\0".to_vec();
    let tiff_be = b"MM\0*\0\0\0\x08".to_vec();
    let cases: Vec<(&[u8], &str)> = vec![
        (b"<!DOCTYPE html><html><body>404</body></html>", "HTML"),
        (b"\xEF\xBB\xBF  \n<html lang=\"zh\">", "HTML"),
        (
            b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            "SVG",
        ),
        (b"<svg width=\"10\" height=\"10\"></svg>", "SVG"),
        (b"<?xml version=\"1.0\"?><root/>", "XML"),
        (b"%PDF-1.7\n%\xE2\xE3\xCF\xD3", "PDF"),
        (&tiff_le, "TIFF"),
        (&tiff_be, "TIFF"),
        (b"BM\x36\0\0\0\0\0\0\0", "BMP"),
        (b"\0\0\0\x1cftypheic\0\0\0\0", "HEIC/HEIF"),
        (b"\0\0\0\x1cftypavif\0\0\0\0", "AVIF"),
        (b"RIFF\x24\0\0\0WAVEfmt ", "RIFF(非WebP)"),
        (b"hello, this is not an image", sniff::UNKNOWN_LABEL),
        (&[0u8; 3], sniff::UNKNOWN_LABEL),
    ];
    for (bytes, name) in cases {
        let err = render_err(bytes);
        assert!(
            matches!(err, ImageError::UnsupportedFormat { detected } if detected == name),
            "{name}: {err:?}"
        );
        assert_eq!(err.code(), "image-unsupported-format");
        assert_eq!(
            err.message(),
            format!("不支持的图片格式(仅支持JPEG/PNG/WebP/GIF)，检测到: {name}")
        );
    }
    // Two magic bytes are enough to name it.
    assert!(matches!(sniff(b"BM"), Sniffed::Refused("BMP")));
}

#[test]
fn magic_only_files_in_accepted_formats_are_corrupt() {
    for bytes in [
        &b"\xFF\xD8\xFF"[..],
        b"\x89PNG\r\n\x1a\n",
        b"GIF89a",
        b"RIFF\0\0\0\0WEBP",
    ] {
        let err = render_err(bytes);
        assert_eq!(err.code(), "image-corrupt", "{err:?}");
    }
}

// ---------------------------------------------------------------- identity

#[test]
fn output_is_deterministic() {
    let picture = DynamicImage::ImageRgb8(noise(700, 500));
    let bytes = encode(&picture, ImageFormat::Png);
    let a = render(&bytes);
    let b = render(&bytes);
    assert_eq!(a.content_id(), b.content_id());
    for (x, y) in a.variants.iter().zip(&b.variants) {
        assert_eq!(x.jpeg, y.jpeg);
    }
    let other = render(&encode(
        &DynamicImage::ImageRgb8(noise(500, 700)),
        ImageFormat::Png,
    ));
    assert_ne!(a.content_id(), other.content_id());
}

#[test]
fn content_id_is_defined_over_length_prefixed_variants() {
    let avatar = default_avatar("content-id");
    let mut hasher = Sha256::new();
    for variant in &avatar.variants {
        hasher.update((variant.jpeg.len() as u64).to_le_bytes());
        hasher.update(&variant.jpeg);
    }
    let expected = hex::encode(hasher.finalize())[..32].to_owned();
    assert_eq!(avatar.content_id().to_string(), expected);
}

#[test]
fn default_avatar_is_deterministic_and_seeded() {
    let a = default_avatar("wxid_alice");
    let b = default_avatar("wxid_alice");
    let c = default_avatar("wxid_bob");
    assert_variants(&a, 640);
    assert_eq!(a.content_id(), b.content_id());
    assert_eq!(a.get(AvatarSize::Big).jpeg, b.get(AvatarSize::Big).jpeg);
    assert_ne!(a.content_id(), c.content_id());

    // Symmetric pattern, light background margin.
    let drawn = identicon::draw("wxid_alice");
    assert_eq!(drawn.dimensions(), (identicon::SIDE, identicon::SIDE));
    assert_eq!(drawn.get_pixel(5, 5), &Rgb([240, 240, 240]));
    for y in (0..identicon::SIDE).step_by(7) {
        for x in (0..identicon::SIDE).step_by(7) {
            assert_eq!(
                drawn.get_pixel(x, y),
                drawn.get_pixel(identicon::SIDE - 1 - x, y)
            );
        }
    }
    // Many seeds: pairwise different ids, and never a blank picture.
    let mut ids: Vec<String> = (0..20)
        .map(|i| {
            let seed = format!("seed-{i}");
            let drawn = identicon::draw(&seed);
            assert!(drawn.pixels().any(|p| p != &Rgb([240, 240, 240])));
            default_avatar(&seed).content_id().to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
}

#[test]
fn render_rgb_accepts_any_shape() {
    let avatar = render_rgb(red_over_blue(900, 300)).expect("render");
    assert_variants(&avatar, 300);
    assert!(matches!(
        render_rgb(RgbImage::new(0, 0)),
        Err(ImageError::Corrupt { .. })
    ));
}

// ---------------------------------------------------------------- shrink-on-load

#[test]
fn large_jpeg_is_decoded_reduced_with_the_same_result() {
    // 1400×1300: the centre square (1300) is ≥ 2×640, so the JPEG is decoded at
    // 1/2 scale (700×650), only its centre square (650×650), before
    // resampling. Stored red over blue, orientation 6.
    let jpeg = encode(
        &DynamicImage::ImageRgb8(red_over_blue(1400, 1300)),
        ImageFormat::Jpeg,
    );
    let limits = ImageLimits::default();
    let reduced = decode::decode(&jpeg, &limits).expect("decode");
    assert_eq!(reduced.image.dimensions(), (650, 650));
    let avatar = render(&with_exif_orientation(&jpeg, 6));
    assert_variants(&avatar, 640);
    let [_, _, left, right] = edges(&avatar);
    assert_near(&left, BLUE, 20);
    assert_near(&right, RED, 20);

    // Greyscale takes the same path.
    let grey =
        DynamicImage::ImageLuma8(image::GrayImage::from_pixel(1300, 1500, image::Luma([90])));
    let avatar = render(&encode(&grey, ImageFormat::Jpeg));
    assert_variants(&avatar, 640);
    assert_near(big(&avatar).get_pixel(320, 320), [90, 90, 90], 4);

    // Below 2×640 our decoder takes it at full size, the centre square only…
    let noisy = DynamicImage::ImageRgb8(noise(1279, 1300));
    let small = encode(&noisy, ImageFormat::Jpeg);
    let full = decode::decode(&small, &limits).expect("decode");
    assert_eq!(full.image.dimensions(), (1279, 1279));
    // …and what it leaves (a progressive JPEG) the general decoder, whole.
    let mut progressive = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut progressive, 90);
    encoder.set_progressive(true);
    encoder
        .encode(noisy.as_bytes(), 1279, 1300, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    let whole = decode::decode(&progressive, &limits).expect("decode");
    assert_eq!(whole.image.dimensions(), (1279, 1300));
}

/// A 4:2:0 JPEG whose centre square is at least 640 px is rendered plane by
/// plane (`variants::render_planes`): every variant is as close to the
/// picture the JPEG was made of (its centre square resized straight to each
/// side) as rendering the same decoded picture in RGB makes it. Landscape, portrait (the square
/// reaching the right edge, inside a partial MCU) and a rotation, at full
/// size and decoded at 1/2; a photo-like picture and saturated tiles.
#[test]
fn planes_render_as_their_rgb_picture_does() {
    use reduced_jpeg::tests::{mean_abs_diff, photo};
    // `photo`'s smooth top two thirds (its bottom third is noise in every
    // channel, far more saturated than a camera's).
    let smooth = |w: u16, h: u16| {
        let mut rgb = photo(w, h + h / 2 + 1);
        rgb.truncate(usize::from(w) * usize::from(h) * 3);
        RgbImage::from_raw(w.into(), h.into(), rgb).unwrap()
    };
    let tiles = |w: u16, h: u16| {
        const COLOURS: [[u8; 3]; 5] = [RED, GREEN, BLUE, WHITE, [0, 0, 0]];
        RgbImage::from_fn(w.into(), h.into(), |x, y| {
            Rgb(COLOURS[((x / 24 + 2 * (y / 24)) % 5) as usize])
        })
    };
    type Draw = fn(u16, u16) -> RgbImage;
    let cases: [(u16, u16, u16, Draw); 4] = [
        (1000, 700, 1, smooth),
        (1001, 1300, 6, smooth),
        (1500, 1400, 3, smooth),
        (1001, 900, 1, tiles),
    ];
    for (width, height, orientation, picture) in cases {
        let source = picture(width, height);
        let mut jpeg = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 95);
        encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
        encoder
            .encode(source.as_raw(), width, height, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let jpeg = with_exif_orientation(&jpeg, orientation);
        let limits = ImageLimits::default();
        let decoded = decode::decode(&jpeg, &limits).unwrap();
        let decode::Picture::YCbCr(ycbcr) = decoded.image else {
            panic!("{width}x{height}: not left in its planes");
        };
        assert!(ycbcr.is_420());
        let planes = variants::render(decode::Picture::YCbCr(ycbcr), decoded.orientation).unwrap();
        let decoded = decode::decode(&jpeg, &limits).unwrap();
        let pixels = variants::render(
            decode::Picture::Pixels(decoded.image.into_pixels()),
            decoded.orientation,
        )
        .unwrap();
        let mut oriented = DynamicImage::ImageRgb8(source);
        oriented.apply_orientation(decoded.orientation);
        let oriented = oriented.into_rgb8();
        for size in AvatarSize::ALL {
            let original = variants::centre_square(&oriented, size.nominal_px())
                .unwrap()
                .into_raw();
            let [planes, pixels] =
                [&planes, &pixels].map(|a| decode_jpeg(&a.get(size).jpeg).into_raw());
            let (error, rgb_error) = (
                mean_abs_diff(&planes, &original),
                mean_abs_diff(&pixels, &original),
            );
            // Where a tile's edge or a tone near chroma's resolution falls at
            // the small sizes, the two filter chains alias differently: about
            // as often one way as the other, by a few percent.
            assert!(
                error <= 1.1 * rgb_error + 1.0,
                "{width}x{height} {size:?}: {error} from the picture vs {rgb_error} in RGB"
            );
        }
    }
}
