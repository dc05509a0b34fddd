//! Test pictures made in code.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

/// Top half `top`, bottom half `bottom`: orientation mistakes show as swapped halves.
pub fn two_tone(width: u32, height: u32, top: [u8; 3], bottom: [u8; 3]) -> RgbImage {
    RgbImage::from_fn(width, height, |_, y| {
        if y < height / 2 {
            Rgb(top)
        } else {
            Rgb(bottom)
        }
    })
}

pub fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, format)
        .expect("encode test picture");
    out.into_inner()
}

pub fn jpeg(width: u32, height: u32, colour: [u8; 3]) -> Vec<u8> {
    encode(
        DynamicImage::ImageRgb8(RgbImage::from_pixel(width, height, Rgb(colour))),
        ImageFormat::Jpeg,
    )
}

pub fn png_with_alpha(width: u32, height: u32) -> Vec<u8> {
    encode(
        DynamicImage::ImageRgba8(RgbaImage::from_pixel(width, height, Rgba([0, 0, 0, 0]))),
        ImageFormat::Png,
    )
}

/// A JPEG whose EXIF says "rotate 90° clockwise to display" (orientation 6).
pub fn jpeg_with_orientation(image: RgbImage, orientation: u16) -> Vec<u8> {
    let plain = encode(DynamicImage::ImageRgb8(image), ImageFormat::Jpeg);
    // APP1: "Exif\0\0" + little-endian TIFF header + one IFD entry (0x0112, SHORT, 1).
    let mut tiff = vec![b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0];
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

pub fn decode(bytes: &[u8]) -> RgbImage {
    image::load_from_memory(bytes)
        .expect("served avatar decodes")
        .to_rgb8()
}

pub fn close(actual: &Rgb<u8>, expected: [u8; 3]) -> bool {
    actual
        .0
        .iter()
        .zip(expected)
        .all(|(a, e)| a.abs_diff(e) <= 40)
}
