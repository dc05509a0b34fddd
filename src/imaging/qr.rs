//! QR pictures drawn from the symbol's modules: the login QR code
//! (`login/getLoginQrCode`) and the shared pieces the contact card builds on.
//!
//! `qrcode` only computes the symbol (which modules are dark); every pixel is
//! drawn here, on whole-pixel module boundaries, so edges stay crisp and the
//! result is a pure function of the content.

use image::{GrayImage, RgbImage};
use qrcode::{Color, EcLevel, QrCode};

use super::JPEG_QUALITY;
use super::error::ImageError;

/// Light modules around the symbol (ISO/IEC 18004 asks for at least 4).
pub(crate) const QUIET_MODULES: u32 = 4;

/// Largest side of the login picture; the module size is the largest whole
/// number of pixels that fits (a typical login URL gives a 33-module symbol at
/// 10 px per module → 410 px).
const LOGIN_MAX_SIDE: u32 = 430;

/// Grey level of dark and light modules.
const DARK: u8 = 0;
const LIGHT: u8 = 255;

/// The login QR code of `content` (e.g. `http://weixin.qq.com/x/<uuid>`) as a
/// greyscale baseline JPEG of about 300–430 px, quiet zone included.
/// Error-correction level M. Same content → same bytes.
///
/// Fails only with [`ImageError::Internal`], when `content` is too long for
/// any QR version (more than 2331 bytes at level M).
pub fn login_qr_jpeg(content: &str) -> Result<Vec<u8>, ImageError> {
    let code = encode(content, EcLevel::M)?;
    let image = draw(&code, module_px(code.width(), LOGIN_MAX_SIDE));
    let (w, h) = image.dimensions();
    encode_jpeg(image.as_raw(), w, h, jpeg_encoder::ColorType::Luma)
}

/// Encode `content` as a (normal, not micro) QR symbol at `ec_level`.
pub(crate) fn encode(content: &str, ec_level: EcLevel) -> Result<QrCode, ImageError> {
    QrCode::with_error_correction_level(content.as_bytes(), ec_level)
        .map_err(|e| ImageError::Internal(format!("qr encode of {} bytes: {e}", content.len())))
}

/// Pixels per module so that symbol + quiet zone is at most `max_side`
/// (at least 1 px, so a huge symbol is never refused, only larger).
pub(crate) fn module_px(width_modules: usize, max_side: u32) -> u32 {
    let total = u32::try_from(width_modules).unwrap_or(u32::MAX) + 2 * QUIET_MODULES;
    (max_side / total).max(1)
}

/// Draw the symbol with its quiet zone, `module_px` pixels per module.
pub(crate) fn draw(code: &QrCode, module_px: u32) -> GrayImage {
    let (side, pixels) = draw_raw(code, module_px, 1);
    GrayImage::from_raw(side, side, pixels).expect("side² pixels of one channel")
}

/// The same symbol in RGB (the contact card, which adds a coloured avatar).
pub(crate) fn draw_rgb(code: &QrCode, module_px: u32) -> RgbImage {
    let (side, pixels) = draw_raw(code, module_px, 3);
    RgbImage::from_raw(side, side, pixels).expect("side² pixels of three channels")
}

/// The symbol's pixels, `channels` bytes each, row by row: one row of pixels
/// per row of modules, copied `module_px` times (a per-pixel closure and a
/// colour conversion afterwards took most of a card's time).
fn draw_raw(code: &QrCode, module_px: u32, channels: usize) -> (u32, Vec<u8>) {
    let n = code.width();
    let quiet = QUIET_MODULES as usize;
    let px = module_px as usize;
    let side = (n + 2 * quiet) * px;
    let row_len = side * channels;
    let mut pixels = vec![LIGHT; side * row_len];
    let mut row = vec![LIGHT; row_len];
    for (my, modules) in code.to_colors().chunks_exact(n).enumerate() {
        row.fill(LIGHT);
        for (mx, _) in modules
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == Color::Dark)
        {
            let start = (quiet + mx) * px * channels;
            row[start..start + px * channels].fill(DARK);
        }
        let top = (quiet + my) * px;
        for line in pixels[top * row_len..(top + px) * row_len].chunks_exact_mut(row_len) {
            line.copy_from_slice(&row);
        }
    }
    // At most 177 modules of a few pixels each: the side fits in a u32.
    (side as u32, pixels)
}

/// Baseline JPEG at [`JPEG_QUALITY`] with the same encoder and settings as the
/// avatar variants (`variants.rs`: `jpeg-encoder`, 4:2:0 box-averaged chroma,
/// JFIF header only). `raw` is `Luma` (1 byte/pixel) or `Rgb` (3) as `color` says.
pub(crate) fn encode_jpeg(
    raw: &[u8],
    w: u32,
    h: u32,
    color: jpeg_encoder::ColorType,
) -> Result<Vec<u8>, ImageError> {
    let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(ImageError::Internal(format!(
            "jpeg encode: {w}x{h} too large"
        )));
    };
    let mut out = Vec::with_capacity(raw.len() / 8 + 1024);
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
    encoder
        .encode(raw, w16, h16, color)
        .map_err(|e| ImageError::Internal(format!("jpeg encode: {e}")))?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Decode every QR code found in a JPEG with a real decoder (`rqrr`).
    pub(crate) fn scan_jpeg(jpeg: &[u8]) -> Vec<String> {
        let image = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
            .expect("a decodable JPEG")
            .to_luma8();
        scan_gray(&image)
    }

    pub(crate) fn scan_gray(image: &GrayImage) -> Vec<String> {
        let (w, h) = image.dimensions();
        let mut prepared =
            rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
                image.get_pixel(x as u32, y as u32).0[0]
            });
        prepared
            .detect_grids()
            .iter()
            .map(|grid| grid.decode().expect("a found grid decodes").1)
            .collect()
    }

    pub(crate) fn assert_is_jpeg(bytes: &[u8]) {
        assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF], "SOI marker");
        assert_eq!(&bytes[bytes.len() - 2..], &[0xFF, 0xD9], "EOI marker");
        assert_eq!(
            image::guess_format(bytes).expect("a known format"),
            image::ImageFormat::Jpeg
        );
    }

    const LOGIN: &str = "http://weixin.qq.com/x/Yd8fHjaE_AG1pcm-2Nk_";

    #[test]
    fn login_qr_decodes_back_to_its_content() {
        let jpeg = login_qr_jpeg(LOGIN).unwrap();
        assert_is_jpeg(&jpeg);
        assert_eq!(scan_jpeg(&jpeg), vec![LOGIN.to_owned()]);
    }

    #[test]
    fn login_qr_has_a_sensible_size_and_quiet_zone() {
        let jpeg = login_qr_jpeg(LOGIN).unwrap();
        let image = image::load_from_memory(&jpeg).unwrap().to_luma8();
        let (w, h) = image.dimensions();
        assert_eq!(w, h);
        assert!((300..=LOGIN_MAX_SIDE).contains(&w), "side {w}");

        let code = encode(LOGIN, EcLevel::M).unwrap();
        let quiet = QUIET_MODULES * module_px(code.width(), LOGIN_MAX_SIDE);
        // The quiet zone is white (JPEG noise aside) on all four sides.
        for y in 0..h {
            for x in 0..w {
                let edge = x < quiet || y < quiet || x >= w - quiet || y >= h - quiet;
                if edge {
                    assert!(image.get_pixel(x, y).0[0] > 200, "({x},{y}) not light");
                }
            }
        }
        // The finder pattern's corner module is dark.
        assert!(image.get_pixel(quiet + 1, quiet + 1).0[0] < 60);
        assert!(jpeg.len() < 60_000, "{} bytes", jpeg.len());
    }

    #[test]
    fn login_qr_is_deterministic() {
        assert_eq!(login_qr_jpeg(LOGIN).unwrap(), login_qr_jpeg(LOGIN).unwrap());
    }

    #[test]
    fn long_and_empty_contents() {
        // Version 40 still draws (1 px modules are too small to fit 430 px).
        let long = "x".repeat(2000);
        let jpeg = login_qr_jpeg(&long).unwrap();
        assert_is_jpeg(&jpeg);

        let too_long = "x".repeat(5000);
        let err = login_qr_jpeg(&too_long).unwrap_err();
        assert!(matches!(err, ImageError::Internal(_)), "{err:?}");
        assert_eq!(err.code(), "image-internal");

        assert_eq!(scan_jpeg(&login_qr_jpeg("").unwrap()), vec![String::new()]);
    }
}
