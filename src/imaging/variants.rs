//! Decoded picture → flattened RGB → centred square → five JPEG variants.

use bytes::Bytes;
use fast_image_resize as fr;
use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};

use super::error::ImageError;
use super::{AvatarSize, JPEG_QUALITY, RenderedAvatar, Variant};

/// Lanczos3 convolution: sharp, good-quality downscaling. The same filter is
/// used for the rare upscale of a tiny source to the small fixed sizes.
const RESIZE_ALG: fr::ResizeAlg = fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3);

/// Render all variants from a decoded picture; `orientation` (from Exif) is
/// applied to the cropped square, which is equivalent to rotating first and
/// much cheaper (the full-size picture is never rotated or copied).
pub(crate) fn render(
    image: DynamicImage,
    orientation: Orientation,
) -> Result<RenderedAvatar, ImageError> {
    let rgb = flatten_to_rgb8(image);
    let (width, height) = rgb.dimensions();
    if width == 0 || height == 0 {
        return Err(ImageError::Corrupt {
            format: "RGB",
            detail: format!("zero dimension {width}x{height}"),
        });
    }

    let square = width.min(height);
    let big_side = square.min(AvatarSize::Big.nominal_px());
    let left = (width - square) / 2;
    let top = (height - square) / 2;

    let mut resizer = fr::Resizer::new();
    // Crop + resize in one pass, straight from the source buffer (no cropped copy).
    let crop = fr::ResizeOptions::new().resize_alg(RESIZE_ALG).crop(
        f64::from(left),
        f64::from(top),
        f64::from(square),
        f64::from(square),
    );
    let big = resize_rgb(&mut resizer, &rgb, big_side, &crop)?;
    drop(rgb);

    let mut big = DynamicImage::ImageRgb8(big);
    big.apply_orientation(orientation);
    let big = big.into_rgb8();

    let whole = fr::ResizeOptions::new().resize_alg(RESIZE_ALG);
    let mut variants = Vec::with_capacity(AvatarSize::ALL.len());
    for size in AvatarSize::ALL {
        let variant = if size == AvatarSize::Big {
            Variant {
                size,
                side: big_side,
                jpeg: encode_jpeg(&big)?,
            }
        } else {
            // Small sizes are always exactly N×N, derived from the `0` square
            // (upscaled only when the source square is smaller than N).
            let side = size.nominal_px();
            let small = resize_rgb(&mut resizer, &big, side, &whole)?;
            Variant {
                size,
                side,
                jpeg: encode_jpeg(&small)?,
            }
        };
        variants.push(variant);
    }
    Ok(RenderedAvatar { variants })
}

/// Resize (part of) `src` into a new `side`×`side` RGB picture.
fn resize_rgb(
    resizer: &mut fr::Resizer,
    src: &RgbImage,
    side: u32,
    options: &fr::ResizeOptions,
) -> Result<RgbImage, ImageError> {
    let (w, h) = src.dimensions();
    let src_view = fr::images::ImageRef::new(w, h, src.as_raw(), fr::PixelType::U8x3)
        .map_err(|e| ImageError::Internal(format!("resize source: {e}")))?;
    let mut dst = fr::images::Image::new(side, side, fr::PixelType::U8x3);
    resizer
        .resize(&src_view, &mut dst, options)
        .map_err(|e| ImageError::Internal(format!("resize: {e}")))?;
    RgbImage::from_raw(side, side, dst.into_vec())
        .ok_or_else(|| ImageError::Internal("resize produced a short buffer".to_owned()))
}

/// Convert any decoded picture to 8-bit RGB; alpha is composited onto white
/// (a fully transparent pixel becomes pure white). RGBA is flattened in place,
/// so no second full-size buffer is allocated for it.
pub(crate) fn flatten_to_rgb8(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        // No-op for Rgb8; converts L8/L16/Rgb16/Rgb32F.
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut buf = rgba.into_raw();
    let pixels = buf.len() / 4;
    for i in 0..pixels {
        let [r, g, b, a] = [buf[4 * i], buf[4 * i + 1], buf[4 * i + 2], buf[4 * i + 3]];
        let a = u32::from(a);
        // round(v·a/255 + 255·(255−a)/255), never above 255.
        let blend = |v: u8| ((u32::from(v) * a + 255 * (255 - a) + 127) / 255) as u8;
        // The pixel was read in full before writing; 3i+2 < 4(i+1), so the
        // write never touches a pixel that has not been read yet.
        buf[3 * i] = blend(r);
        buf[3 * i + 1] = blend(g);
        buf[3 * i + 2] = blend(b);
    }
    buf.truncate(pixels * 3);
    // The length is exactly w·h·3, so this cannot fail; fall back to an
    // empty picture (reported as corrupt by the caller) rather than panic.
    RgbImage::from_raw(w, h, buf).unwrap_or_else(|| RgbImage::new(0, 0))
}

/// Baseline JPEG at [`JPEG_QUALITY`] with 4:2:0 chroma (box-averaged, as libjpeg
/// does below quality 90), standard tables, JFIF header only. `jpeg-encoder`
/// uses AVX2 for colour conversion and the DCT where the CPU has it.
fn encode_jpeg(image: &RgbImage) -> Result<Bytes, ImageError> {
    let (w, h) = image.dimensions();
    let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(ImageError::Internal(format!(
            "jpeg encode: {w}x{h} too large"
        )));
    };
    let mut out = Vec::with_capacity(image.as_raw().len() / 8 + 1024);
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
    encoder
        .encode(image.as_raw(), w16, h16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| ImageError::Internal(format!("jpeg encode: {e}")))?;
    Ok(Bytes::from(out))
}
