//! Untrusted bytes → our own JPEG decoder (the one baseline JPEGs go through,
//! at full size or shrunk on load), differentially against jpeg-decoder: never
//! a panic; an answer has the size it says; and where both decode a file at
//! the same scale, the pictures agree (mean difference ≤ 2 levels: the same
//! filters, rounded differently at 1/8, an integer IDCT in jpeg-decoder at
//! full size where ours is in floats) — the centre square too, against the
//! same square of jpeg-decoder's whole picture.
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
    assert_eq!(pixels.len(), width as usize * height as usize * usize::from(channels));
    if centre_square {
        assert_eq!(width, height);
    }

    let mut reference = jpeg_decoder::Decoder::new(data);
    if reference.read_info().is_err() {
        return;
    }
    let Some(info) = reference.info() else {
        return;
    };
    // The whole picture at this scale, as ours rounds it (up).
    let scaled = |side: u16| (u32::from(side) * n as u32).div_ceil(8);
    let (whole_w, whole_h) = (scaled(info.width), scaled(info.height));
    let Ok(size) = reference.scale(whole_w as u16, whole_h as u16) else {
        return;
    };
    let Ok(expected) = reference.decode() else {
        return;
    };
    let channels = usize::from(channels);
    if (u32::from(size.0), u32::from(size.1)) != (whole_w, whole_h)
        || expected.len() != whole_w as usize * whole_h as usize * channels
    {
        return;
    }
    let (left, top) = ((whole_w - width) as usize / 2, (whole_h - height) as usize / 2);
    let row = whole_w as usize * channels;
    let expected = expected
        .chunks_exact(row)
        .skip(top)
        .take(height as usize)
        .flat_map(|r| &r[left * channels..(left + width as usize) * channels]);
    let total: u64 = pixels.iter().zip(expected).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
    assert!(total <= 2 * pixels.len() as u64, "mean difference above 2 levels");
});
