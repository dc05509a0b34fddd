//! Untrusted bytes → `imaging::render_avatar` → five variants or a clear error.
//!
//! Limits are smaller than production so one input cannot take seconds; the
//! properties checked hold for any limits.
#![no_main]

use gewe_server::imaging::{AvatarSize, ImageLimits, render_avatar};
use libfuzzer_sys::fuzz_target;

const LIMITS: ImageLimits = ImageLimits {
    max_side: 2048,
    max_pixels: 2_000_000,
    max_alloc: 64 * 1024 * 1024,
};

fuzz_target!(|data: &[u8]| {
    match render_avatar(data, &LIMITS) {
        Ok(avatar) => {
            assert_eq!(avatar.variants.len(), AvatarSize::ALL.len());
            for (variant, size) in avatar.variants.iter().zip(AvatarSize::ALL) {
                assert_eq!(variant.size, size);
                if size == AvatarSize::Big {
                    assert!(variant.side >= 1 && variant.side <= 640, "{}", variant.side);
                } else {
                    assert_eq!(variant.side, size.nominal_px());
                }
                // Every variant is a complete baseline JPEG.
                assert!(variant.jpeg.starts_with(&[0xFF, 0xD8, 0xFF]));
                assert!(variant.jpeg.ends_with(&[0xFF, 0xD9]));
            }
            assert_eq!(avatar.content_id().to_string().len(), 32);
        }
        Err(e) => {
            // Every refusal has a stable code and a non-empty message for the user.
            assert!(e.code().starts_with("image-"), "{}", e.code());
            assert!(!e.message().is_empty());
            assert_ne!(
                e.code(),
                "image-internal",
                "internal error on user input: {e:?}"
            );
        }
    }
});
