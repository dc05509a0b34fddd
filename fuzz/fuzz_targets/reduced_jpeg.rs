//! Untrusted bytes → our reduced (shrink-on-load) JPEG decoder, differentially
//! against jpeg-decoder: never a panic; an answer has the size it says; and
//! where both decode a file at the same scale, the pictures agree (mean
//! difference ≤ 2 levels: the same filters, rounded differently at 1/8).
#![no_main]

use gewe_server::imaging::decode_jpeg_reduced_for_fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, &[u8])| {
    let (choice, data) = input;
    let n = [1, 2, 4][usize::from(choice % 3)];
    // The server checks dimensions before any decoder runs; 4 MP keeps one
    // input well under a second.
    let Some((width, height, channels, pixels)) = decode_jpeg_reduced_for_fuzzing(data, n, 4 << 20)
    else {
        return;
    };
    assert!(matches!(channels, 1 | 3));
    assert_eq!(pixels.len(), width as usize * height as usize * usize::from(channels));

    let mut reference = jpeg_decoder::Decoder::new(data);
    if reference.read_info().is_err() {
        return;
    }
    let Ok(size) = reference.scale(width as u16, height as u16) else {
        return;
    };
    let Ok(expected) = reference.decode() else {
        return;
    };
    if (u32::from(size.0), u32::from(size.1)) != (width, height) || expected.len() != pixels.len() {
        return;
    }
    let total: u64 = pixels.iter().zip(&expected).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
    assert!(total <= 2 * pixels.len() as u64, "mean difference above 2 levels");
});
