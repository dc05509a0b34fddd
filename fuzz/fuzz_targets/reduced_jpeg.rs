//! Untrusted bytes → our own JPEG decoder (the one baseline JPEGs go through,
//! at full size or shrunk on load), differentially: never a panic; an answer
//! has the size it says; and where the reference decodes a file at the same
//! scale, the pictures agree (mean difference ≤ 2 levels, 4 at 1/8: the same
//! filters, rounded differently at 1/8) — the centre square too, against the
//! same square of the reference's picture. The reference is jpeg-decoder's
//! scaled decode, and zune-jpeg at full size.
#![no_main]

use gewe_server::imaging::decode_jpeg_reduced_for_fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, &[u8])| {
    let (choice, data) = input;
    let n = [1, 2, 4, 8][usize::from(choice % 4)];
    let centre_square = choice & 4 != 0;
    // The server checks dimensions before any decoder runs; 4 MP keeps one
    // input well under a second.
    let Some((width, height, channels, pixels)) =
        decode_jpeg_reduced_for_fuzzing(data, n, centre_square, 4 << 20)
    else {
        return;
    };
    assert!(matches!(channels, 1 | 3));
    assert_eq!(
        pixels.len(),
        width as usize * height as usize * usize::from(channels)
    );
    if centre_square {
        assert_eq!(width, height);
    }

    let channels = usize::from(channels);
    let Some((whole_w, whole_h, expected)) = reference(data, n, channels) else {
        return;
    };
    if expected.len() != whole_w * whole_h * channels {
        return;
    }
    let (width, height) = (width as usize, height as usize);
    if whole_w < width || whole_h < height {
        return;
    }
    let (left, top) = ((whole_w - width) / 2, (whole_h - height) / 2);
    // zune-jpeg upsamples chroma at the last column and row from the MCU's
    // padding, where libjpeg-turbo (and ours) repeat the last real sample.
    let edge = usize::from(n == 8);
    let (mut total, mut compared) = (0u64, 0u64);
    for y in (0..height).filter(|y| top + y + edge < whole_h) {
        for x in (0..width).filter(|x| left + x + edge < whole_w) {
            for k in 0..channels {
                let ours = pixels[(y * width + x) * channels + k];
                let theirs = expected[((top + y) * whole_w + left + x) * channels + k];
                total += u64::from(ours.abs_diff(theirs));
                compared += 1;
            }
        }
    }
    // At 1/8 a block is its DC term, which jpeg-decoder rounds down where
    // ours rounds; in a picture of one or two pixels the chroma's rounding
    // then moves red and blue by up to 3 levels.
    let bound = if n == 1 { 4 } else { 2 };
    assert!(
        total <= bound * compared,
        "mean difference above {bound} levels"
    );
});

/// The whole picture at `n`/8 (sides rounded up, as ours): reduced by
/// jpeg-decoder, the only pure-Rust decoder that scales; at full size by
/// zune-jpeg, the decoder full-size JPEGs met before ours, which follows
/// libjpeg-turbo (libvips) on the corrupt streams where jpeg-decoder departs
/// from both by tens of levels over whole blocks.
fn reference(data: &[u8], n: usize, channels: usize) -> Option<(usize, usize, Vec<u8>)> {
    if n == 8 {
        use zune_jpeg::zune_core::{
            bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions,
        };
        let colour = if channels == 1 {
            ColorSpace::Luma
        } else {
            ColorSpace::RGB
        };
        // Strict: left lenient (as the image crate sets it up), it fills
        // what it cannot decode with zeros where ours gives up.
        let options = DecoderOptions::default()
            .set_strict_mode(true)
            .jpeg_set_out_colorspace(colour);
        let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(data), options);
        let pixels = decoder.decode().ok()?;
        let (w, h) = decoder.dimensions()?;
        return Some((w, h, pixels));
    }
    let mut decoder = jpeg_decoder::Decoder::new(data);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    let scaled = |side: u16| (usize::from(side) * n).div_ceil(8);
    let (w, h) = (scaled(info.width), scaled(info.height));
    let size = decoder.scale(w as u16, h as u16).ok()?;
    let pixels = decoder.decode().ok()?;
    ((usize::from(size.0), usize::from(size.1)) == (w, h)).then_some((w, h, pixels))
}
