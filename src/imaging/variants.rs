//! Decoded picture → flattened RGB → centred square → five JPEG variants.

use bytes::Bytes;
use fast_image_resize as fr;
use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, ImageBuffer, Luma, Pixel, Rgb, RgbImage};

use super::decode::Picture;
use super::error::ImageError;
use super::reduced_jpeg::{Samples, YCbCr};
use super::{AvatarSize, JPEG_QUALITY, RenderedAvatar, Variant};

/// Lanczos3 convolution: sharp, good-quality downscaling. The same filter is
/// used for the rare upscale of a tiny source to the small fixed sizes.
static RESIZE_ALG: std::sync::LazyLock<fr::ResizeAlg> = std::sync::LazyLock::new(|| {
    let lanczos3 = fr::Filter::new("Lanczos3 (table)", lanczos3_from_table, 3.0)
        .expect("a positive support is a valid filter");
    fr::ResizeAlg::Convolution(fr::FilterType::Custom(lanczos3))
});

/// Steps of [`lanczos3_from_table`]'s table per unit of distance.
const LANCZOS_STEPS: usize = 1024;

/// The Lanczos3 kernel, sinc(x)·sinc(x/3) for |x| < 3, interpolated from a
/// table: fast_image_resize evaluates the kernel for every weight of every
/// resize, two sines each (~28 000 for a 1080p picture's 640 square, about
/// 3% of its render). Linear interpolation between 1/1024 steps is within
/// 10⁻⁶ of the formula, far below the 1/16384 the weights are rounded to.
fn lanczos3_from_table(x: f64) -> f64 {
    static TABLE: std::sync::LazyLock<Vec<f64>> = std::sync::LazyLock::new(|| {
        (0..=3 * LANCZOS_STEPS + 1)
            .map(|i| lanczos3_exact(i as f64 / LANCZOS_STEPS as f64))
            .collect()
    });
    let at = x.abs() * LANCZOS_STEPS as f64;
    // Also NaN, which no weight should ever be.
    if at.is_nan() || at >= (3 * LANCZOS_STEPS) as f64 {
        return 0.0;
    }
    let (i, fraction) = (at as usize, at.fract());
    TABLE[i] + (TABLE[i + 1] - TABLE[i]) * fraction
}

fn lanczos3_exact(x: f64) -> f64 {
    let sinc = |x: f64| {
        if x == 0.0 {
            1.0
        } else {
            let x = x * std::f64::consts::PI;
            x.sin() / x
        }
    };
    if x.abs() < 3.0 {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

/// Render all variants from a decoded picture; `orientation` (from Exif) is
/// applied to the cropped square, which is equivalent to rotating first and
/// much cheaper (the full-size picture is never rotated or copied).
pub(crate) fn render(
    picture: Picture,
    orientation: Orientation,
) -> Result<RenderedAvatar, ImageError> {
    match picture {
        Picture::YCbCr(ycbcr) if ycbcr.is_420() && big_from_planes(&ycbcr) => {
            render_planes(ycbcr, orientation)
        }
        other => render_pixels(other.into_pixels(), orientation),
    }
}

/// Whether the `0` variant is a full 640 square cut from the planes: only
/// then do the chroma planes halve exactly at every size.
fn big_from_planes(ycbcr: &YCbCr) -> bool {
    let (_, _, width, height) = ycbcr.region();
    width.min(height) >= AvatarSize::Big.nominal_px() as usize
}

fn render_pixels(
    image: DynamicImage,
    orientation: Orientation,
) -> Result<RenderedAvatar, ImageError> {
    let (width, height) = (image.width(), image.height());
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

    let mut resizer = super::buffers::resizer();
    // Crop + resize in one pass, straight from the source buffer (no cropped copy).
    let crop = fr::ResizeOptions::new().resize_alg(*RESIZE_ALG).crop(
        f64::from(left),
        f64::from(top),
        f64::from(square),
        f64::from(square),
    );
    let big = match image {
        DynamicImage::ImageRgba8(rgba) => resize_onto_white(&mut resizer, rgba, big_side, &crop)?,
        other => {
            let rgb = flatten_to_rgb8(other);
            let big = resize(&mut resizer, &rgb, big_side, &crop)?;
            super::buffers::give_back(rgb.into_raw());
            big
        }
    };

    let mut big = DynamicImage::ImageRgb8(big);
    big.apply_orientation(orientation);
    let big = big.into_rgb8();

    let whole = fr::ResizeOptions::new().resize_alg(*RESIZE_ALG);
    let mut halves = Halves::of(big);
    let mut variants = Vec::with_capacity(AvatarSize::ALL.len());
    for size in AvatarSize::ALL {
        let variant = if size == AvatarSize::Big {
            Variant {
                size,
                side: big_side,
                jpeg: encode_jpeg(halves.full())?,
            }
        } else {
            // Small sizes are always exactly N×N, derived from the `0` square
            // (upscaled only when the source square is smaller than N).
            let side = size.nominal_px();
            let source = halves.source_for(&mut resizer, side)?;
            let small = resize(&mut resizer, source, side, &whole)?;
            Variant {
                size,
                side,
                jpeg: encode_jpeg(&small)?,
            }
        };
        variants.push(variant);
    }
    super::buffers::give_back_resizer(resizer);
    Ok(RenderedAvatar { variants })
}

/// [`render`] for a 4:2:0 JPEG whose centre square is at least 640 px, plane
/// by plane: luma cut and resized to 640, each chroma plane straight from
/// its own samples to 320, then the small sizes likewise, and the encoder
/// takes the planes as they are. Resampling is linear, so this is what
/// resizing the RGB picture gives up to rounding, without the chroma
/// upsampling, the two colour conversions and the chroma averaging, and with
/// half the samples to resize.
fn render_planes(ycbcr: YCbCr, orientation: Orientation) -> Result<RenderedAvatar, ImageError> {
    let (left, top, width, height) = ycbcr.region();
    let square = width.min(height);
    let (left, top) = (left + (width - square) / 2, top + (height - square) / 2);
    let big_side = AvatarSize::Big.nominal_px();
    let mut resizer = super::buffers::resizer();
    let mut planes = Vec::with_capacity(3);
    for (index, samples) in ycbcr.into_planes().into_iter().enumerate() {
        // Chroma sample i covers luma samples 2i and 2i + 1: the square's
        // chroma is the same rectangle at half the scale.
        let scale = if index == 0 { 1.0 } else { 0.5 };
        let at = |v: usize| v as f64 * scale;
        let crop = fr::ResizeOptions::new().resize_alg(*RESIZE_ALG).crop(
            at(left),
            at(top),
            at(square),
            at(square),
        );
        let side = if index == 0 { big_side } else { big_side / 2 };
        let plane = resize(&mut resizer, &gray(samples)?, side, &crop)?;
        let mut plane = DynamicImage::ImageLuma8(plane);
        plane.apply_orientation(orientation);
        planes.push(Halves::of(plane.into_luma8()));
    }
    let whole = fr::ResizeOptions::new().resize_alg(*RESIZE_ALG);
    let mut variants = Vec::with_capacity(AvatarSize::ALL.len());
    for size in AvatarSize::ALL {
        let side = size.nominal_px();
        let jpeg = if size == AvatarSize::Big {
            encode_planes([planes[0].full(), planes[1].full(), planes[2].full()])?
        } else {
            let mut small = Vec::with_capacity(3);
            for (index, levels) in planes.iter_mut().enumerate() {
                let plane_side = if index == 0 { side } else { side.div_ceil(2) };
                let source = levels.source_for(&mut resizer, plane_side)?;
                small.push(resize(&mut resizer, source, plane_side, &whole)?);
            }
            encode_planes([&small[0], &small[1], &small[2]])?
        };
        variants.push(Variant { size, side, jpeg });
    }
    super::buffers::give_back_resizer(resizer);
    Ok(RenderedAvatar { variants })
}

fn gray(samples: Samples) -> Result<GrayImage, ImageError> {
    let (width, rows) = (u32::try_from(samples.width), u32::try_from(samples.rows));
    let (Ok(width), Ok(rows)) = (width, rows) else {
        return Err(ImageError::Internal(
            "plane larger than a picture".to_owned(),
        ));
    };
    GrayImage::from_raw(width, rows, samples.pixels)
        .ok_or_else(|| ImageError::Internal("plane shorter than its size".to_owned()))
}

/// The `0` square and, made when first asked for, its box-filtered halves:
/// a small size is resized from the smallest of them at least twice its side,
/// as libvips shrinks by an integer factor with a box filter before its
/// Lanczos pass. The Lanczos pass then reads a quarter (or a sixteenth) of the
/// pixels with as many fewer taps: the four small sizes from 640 px cost as
/// much as the 640 itself did.
struct Halves<P: Layout = Rgb<u8>> {
    /// Each the one before halved; the first is the `0` square.
    levels: Vec<ImageBuffer<P, Vec<u8>>>,
}

impl<P: Layout> Halves<P> {
    fn of(full: ImageBuffer<P, Vec<u8>>) -> Self {
        Halves { levels: vec![full] }
    }

    fn full(&self) -> &ImageBuffer<P, Vec<u8>> {
        &self.levels[0]
    }

    fn source_for(
        &mut self,
        resizer: &mut fr::Resizer,
        side: u32,
    ) -> Result<&ImageBuffer<P, Vec<u8>>, ImageError> {
        loop {
            let last = self.levels.len() - 1;
            let current = &self.levels[last];
            let (w, h) = current.dimensions();
            // Only even sides halve exactly (a 640 square always does).
            if w / 2 < 2 * side || w % 2 != 0 || h != w || last == 2 {
                return Ok(&self.levels[last]);
            }
            let half = box_half(resizer, current)?;
            self.levels.push(half);
        }
    }
}

/// `square` (of even side) at half its side: with a box filter at exactly
/// half, each pixel is the mean of a 2×2 block.
fn box_half<P: Layout>(
    resizer: &mut fr::Resizer,
    square: &ImageBuffer<P, Vec<u8>>,
) -> Result<ImageBuffer<P, Vec<u8>>, ImageError> {
    let halving =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Box));
    resize(resizer, square, square.width() / 2, &halving)
}

/// The centre square of `rgb` resized to `side`×`side` (the contact card's
/// avatar), with the variants' filter.
pub(crate) fn centre_square(rgb: &RgbImage, side: u32) -> Result<RgbImage, ImageError> {
    let (width, height) = rgb.dimensions();
    let square = width.min(height);
    let crop = fr::ResizeOptions::new().resize_alg(*RESIZE_ALG).crop(
        f64::from((width - square) / 2),
        f64::from((height - square) / 2),
        f64::from(square),
        f64::from(square),
    );
    resize(&mut fr::Resizer::new(), rgb, side, &crop)
}

/// The pixel layouts the variants are resized in: RGB, or one plane.
trait Layout: Pixel<Subpixel = u8> {
    const LAYOUT: fr::PixelType;
}

impl Layout for Rgb<u8> {
    const LAYOUT: fr::PixelType = fr::PixelType::U8x3;
}

impl Layout for Luma<u8> {
    const LAYOUT: fr::PixelType = fr::PixelType::U8;
}

/// Resize (part of) `src` into a new `side`×`side` picture.
fn resize<P: Layout>(
    resizer: &mut fr::Resizer,
    src: &ImageBuffer<P, Vec<u8>>,
    side: u32,
    options: &fr::ResizeOptions,
) -> Result<ImageBuffer<P, Vec<u8>>, ImageError> {
    let (w, h) = src.dimensions();
    let src_view = fr::images::ImageRef::new(w, h, src.as_raw(), P::LAYOUT)
        .map_err(|e| ImageError::Internal(format!("resize source: {e}")))?;
    let mut dst = fr::images::Image::new(side, side, P::LAYOUT);
    resizer
        .resize(&src_view, &mut dst, options)
        .map_err(|e| ImageError::Internal(format!("resize: {e}")))?;
    ImageBuffer::from_raw(side, side, dst.into_vec())
        .ok_or_else(|| ImageError::Internal("resize produced a short buffer".to_owned()))
}

/// (Part of) an RGBA picture resized to `side`×`side` and composited onto
/// white. Flattening is linear in premultiplied alpha, so it commutes with the
/// resize: flat = c·a + 255·(1 − a) = premultiplied c + (255 − a), after the
/// resize as before it. Premultiplying the source (SIMD) and compositing only
/// the small result costs a fraction of flattening every source pixel.
fn resize_onto_white(
    resizer: &mut fr::Resizer,
    rgba: image::RgbaImage,
    side: u32,
    options: &fr::ResizeOptions,
) -> Result<RgbImage, ImageError> {
    let (w, h) = rgba.dimensions();
    let mut raw = rgba.into_raw();
    let internal = |e: &dyn std::fmt::Display| ImageError::Internal(format!("resize: {e}"));
    let mut premultiplied = fr::images::Image::from_slice_u8(w, h, &mut raw, fr::PixelType::U8x4)
        .map_err(|e| internal(&e))?;
    fr::MulDiv::default()
        .multiply_alpha_inplace(&mut premultiplied)
        .map_err(|e| internal(&e))?;
    let mut dst = fr::images::Image::new(side, side, fr::PixelType::U8x4);
    resizer
        .resize(&premultiplied, &mut dst, &options.use_alpha(false))
        .map_err(|e| internal(&e))?;
    super::buffers::give_back(raw);
    let rgb = dst
        .buffer()
        .chunks_exact(4)
        .flat_map(|pixel| {
            let white = 255 - pixel[3];
            [
                pixel[0].saturating_add(white),
                pixel[1].saturating_add(white),
                pixel[2].saturating_add(white),
            ]
        })
        .collect();
    RgbImage::from_raw(side, side, rgb)
        .ok_or_else(|| ImageError::Internal("resize produced a short buffer".to_owned()))
}

/// Rows converted at a time when a picture is not 8-bit RGB or RGBA already.
const STRIPE_ROWS: u32 = 64;

/// Convert any decoded picture to 8-bit RGB; alpha is composited onto white
/// (a fully transparent pixel becomes pure white). RGB8 is kept as it is and
/// RGBA8 is flattened in place, so neither allocates a second full-size buffer.
/// Every other layout (grey, grey + alpha, 16-bit, float) is converted a stripe
/// of rows at a time straight into the RGB8 result: the one extra full-size
/// buffer is `w·h·3` bytes ([`conversion_bytes`], which the decoder's memory
/// reservation counts), never a full-size RGBA8 or 16-bit copy.
pub(crate) fn flatten_to_rgb8(image: DynamicImage) -> RgbImage {
    let image = match image {
        DynamicImage::ImageRgb8(rgb) => return rgb,
        DynamicImage::ImageRgba8(rgba) => return flatten_rgba8_in_place(rgba),
        other => other,
    };
    let (w, h) = (image.width(), image.height());
    let alpha = image.color().has_alpha();
    let mut out = Vec::with_capacity(conversion_len(w, h));
    let mut top = 0;
    while top < h {
        let rows = STRIPE_ROWS.min(h - top);
        let stripe = image.crop_imm(0, top, w, rows);
        if alpha {
            let stripe = flatten_rgba8_in_place(stripe.into_rgba8());
            out.extend_from_slice(stripe.as_raw());
        } else {
            out.extend_from_slice(stripe.into_rgb8().as_raw());
        }
        top += rows;
    }
    drop(image);
    // The length is exactly w·h·3, so this cannot fail; fall back to an
    // empty picture (reported as corrupt by the caller) rather than panic.
    RgbImage::from_raw(w, h, out).unwrap_or_else(|| RgbImage::new(0, 0))
}

/// Bytes [`flatten_to_rgb8`] allocates beside the decoded picture of this
/// colour type and size: none for RGB8 and RGBA8, `w·h·3` (the RGB8 result)
/// plus one stripe otherwise.
pub(crate) fn conversion_bytes(color: image::ColorType, width: u32, height: u32) -> u64 {
    use image::ColorType;
    if matches!(color, ColorType::Rgb8 | ColorType::Rgba8) {
        return 0;
    }
    let stripe = u64::from(width) * u64::from(STRIPE_ROWS.min(height));
    // The stripe's copy in its own layout (at most 16 bytes a pixel) and as RGBA8.
    let stripe_bytes = stripe * (u64::from(color.bytes_per_pixel()) + 4);
    (u64::from(width) * u64::from(height) * 3).saturating_add(stripe_bytes)
}

fn conversion_len(width: u32, height: u32) -> usize {
    usize::try_from(u64::from(width) * u64::from(height) * 3).unwrap_or(0)
}

/// Composites RGBA8 onto white in its own buffer and drops the alpha bytes.
fn flatten_rgba8_in_place(rgba: image::RgbaImage) -> RgbImage {
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
    RgbImage::from_raw(w, h, buf).unwrap_or_else(|| RgbImage::new(0, 0))
}

/// Luma and its two half-size chroma planes as a baseline JPEG at
/// [`JPEG_QUALITY`].
fn encode_planes([y, cb, cr]: [&GrayImage; 3]) -> Result<Bytes, ImageError> {
    let (w, h) = y.dimensions();
    super::baseline_encoder::encode_ycbcr420(
        [y, cb, cr].map(|p| p.as_raw().as_slice()),
        w,
        h,
        JPEG_QUALITY,
    )
    .map(Bytes::from)
    .ok_or_else(|| ImageError::Internal(format!("jpeg encode: {w}x{h} planes cannot be a JPEG")))
}

/// Baseline JPEG at [`JPEG_QUALITY`] with 4:2:0 chroma (box-averaged, as libjpeg
/// does below quality 90), standard tables, JFIF header only.
fn encode_jpeg(image: &RgbImage) -> Result<Bytes, ImageError> {
    let (w, h) = image.dimensions();
    super::baseline_encoder::encode_rgb(image.as_raw(), w, h, JPEG_QUALITY)
        .map(Bytes::from)
        .ok_or_else(|| ImageError::Internal(format!("jpeg encode: {w}x{h} cannot be a JPEG")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lanczos3_table_is_the_formula_within_a_millionth() {
        for i in -400_000..=400_000 {
            let x = f64::from(i) / 100_000.0;
            let (table, exact) = (lanczos3_from_table(x), lanczos3_exact(x));
            assert!((table - exact).abs() < 1e-6, "{x}: {table} vs {exact}");
        }
        assert_eq!(lanczos3_from_table(f64::NAN), 0.0);
        assert_eq!(lanczos3_exact(0.0), 1.0);
        assert!(lanczos3_exact(1.0).abs() < 1e-15 && lanczos3_exact(1.5) < 0.0);
    }

    #[test]
    fn small_sizes_are_resized_from_box_halves_at_least_twice_their_side() {
        let big = RgbImage::from_fn(640, 640, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut resizer = fr::Resizer::new();
        let half = box_half(&mut resizer, &big).unwrap();
        assert_eq!(half.dimensions(), (320, 320));
        // The mean of each 2×2 block: (2x + 2x+1) / 2 rounds to 2x+1 here.
        assert_eq!(half.get_pixel(3, 5).0, [7, 11, 7]);
        assert_eq!(half.get_pixel(100, 60).0, [201, 121, 7]);
        let mut halves = Halves::of(big);
        let mut width_for = |side| halves.source_for(&mut resizer, side).unwrap().width();
        assert_eq!(width_for(132), 320);
        assert_eq!(width_for(96), 320);
        assert_eq!(width_for(64), 160);
        assert_eq!(width_for(46), 160);
        // An odd side is never halved: the Lanczos pass reads it whole.
        let mut odd = Halves::of(RgbImage::new(501, 501));
        assert_eq!(odd.source_for(&mut resizer, 46).unwrap().width(), 501);
    }

    /// Resizers are kept between pictures (`buffers`): one that resized a
    /// larger picture, RGBA included, resizes the next exactly as a new one.
    #[test]
    fn a_kept_resizer_resizes_as_a_new_one() {
        let noise = |x: u32, y: u32| (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) as u8;
        let mut kept = fr::Resizer::new();
        let larger = image::RgbaImage::from_fn(900, 700, |x, y| {
            image::Rgba([noise(x, y), noise(y, x), 90, noise(x + 1, y)])
        });
        let crop = fr::ResizeOptions::new()
            .resize_alg(*RESIZE_ALG)
            .crop(100.0, 0.0, 700.0, 700.0);
        resize_onto_white(&mut kept, larger, 640, &crop).unwrap();
        let picture = RgbImage::from_fn(300, 300, |x, y| image::Rgb([noise(x, y), 7, noise(y, x)]));
        let whole = fr::ResizeOptions::new().resize_alg(*RESIZE_ALG);
        assert_eq!(
            resize(&mut kept, &picture, 132, &whole).unwrap(),
            resize(&mut fr::Resizer::new(), &picture, 132, &whole).unwrap()
        );
    }

    /// Resizing premultiplied and compositing after gives what flattening
    /// first and resizing gives, translucent colours included (where colour
    /// and alpha both jump, the two clamp the filter's overshoot differently,
    /// as libvips, which also resizes premultiplied, does).
    #[test]
    fn resizing_onto_white_matches_flattening_first() {
        let rgba = image::RgbaImage::from_fn(300, 200, |x, y| {
            image::Rgba([
                (x * 255 / 299) as u8,
                (y * 255 / 199) as u8,
                ((x + y) / 2) as u8,
                ((x * 255 / 299 + (199 - y) * 255 / 199) / 2) as u8,
            ])
        });
        let crop = fr::ResizeOptions::new()
            .resize_alg(*RESIZE_ALG)
            .crop(50.0, 0.0, 200.0, 200.0);
        let mut resizer = fr::Resizer::new();
        let flat_first = resize(
            &mut resizer,
            &flatten_to_rgb8(DynamicImage::ImageRgba8(rgba.clone())),
            64,
            &crop,
        )
        .unwrap();
        let onto_white = resize_onto_white(&mut resizer, rgba, 64, &crop).unwrap();
        let worst = flat_first
            .as_raw()
            .iter()
            .zip(onto_white.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max();
        assert!(worst <= Some(2), "largest difference {worst:?}");
    }
}
