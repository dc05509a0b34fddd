//! How avatars are named: a content id and WeChat's avatar sizes.

use std::fmt;

use super::FieldError;

/// An avatar's content id: 32 lowercase hex characters (the first 128 bits of a
/// SHA-256 over its variants). The id names content that never changes, which is
/// what makes `/mmhead/<id>/<size>` cacheable forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AvatarId(u128);

impl AvatarId {
    /// The id of content whose SHA-256 is `digest`.
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        let mut head = [0u8; 16];
        head.copy_from_slice(&digest[..16]);
        AvatarId(u128::from_be_bytes(head))
    }

    /// Parses the 32-lowercase-hex form; anything else cannot name an avatar.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        // By hand rather than `u128::from_str_radix`, whose overflow-checked
        // steps cost more than the rest of an avatar read's routing.
        let digits = text.as_bytes();
        if digits.len() != 32 {
            return Err(Self::malformed());
        }
        let mut value = 0u128;
        for &digit in digits {
            let nibble = match digit {
                b'0'..=b'9' => digit - b'0',
                b'a'..=b'f' => digit - b'a' + 10,
                _ => return Err(Self::malformed()),
            };
            value = (value << 4) | u128::from(nibble);
        }
        Ok(AvatarId(value))
    }

    fn malformed() -> FieldError {
        FieldError::Invalid {
            field: "avatarId",
            detail: "头像ID须为32位小写十六进制".to_owned(),
        }
    }

    /// The 32 lowercase hex digits, without formatting machinery (the ETag of
    /// every avatar read is made of them).
    pub fn hex_digits(self) -> [u8; 32] {
        let mut digits = [0u8; 32];
        // Cannot fail: 16 bytes fill 32 digits exactly.
        let _ = hex::encode_to_slice(self.0.to_be_bytes(), &mut digits);
        digits
    }

    /// The id as a number, e.g. for a compact map key.
    pub fn as_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Display for AvatarId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.hex_digits();
        f.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
    }
}

/// Sizes WeChat's avatar URLs use; the URL path segment is `label()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AvatarSize {
    /// Label `0`: 640 px, or the source square's side when that is smaller (never upscaled).
    Big,
    S132,
    S96,
    S64,
    S46,
}

impl AvatarSize {
    /// All sizes, largest first.
    pub const ALL: [AvatarSize; 5] = [
        AvatarSize::Big,
        AvatarSize::S132,
        AvatarSize::S96,
        AvatarSize::S64,
        AvatarSize::S46,
    ];

    /// URL path segment: "0", "132", "96", "64", "46".
    pub fn label(self) -> &'static str {
        match self {
            AvatarSize::Big => "0",
            AvatarSize::S132 => "132",
            AvatarSize::S96 => "96",
            AvatarSize::S64 => "64",
            AvatarSize::S46 => "46",
        }
    }

    pub fn from_label(s: &str) -> Option<Self> {
        AvatarSize::ALL.into_iter().find(|size| size.label() == s)
    }

    /// Nominal side in pixels: 640, 132, 96, 64, 46. The small sizes are always
    /// exactly this; `Big` may be smaller (see [`AvatarSize::Big`]).
    pub fn nominal_px(self) -> u32 {
        match self {
            AvatarSize::Big => 640,
            AvatarSize::S132 => 132,
            AvatarSize::S96 => 96,
            AvatarSize::S64 => 64,
            AvatarSize::S46 => 46,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_other_spellings() {
        let id = AvatarId::from_digest(&[0xab; 32]);
        assert_eq!(id.to_string(), "abababababababababababababababab");
        assert_eq!(AvatarId::parse(&id.to_string()), Ok(id));
        let mixed = "0123456789abcdeffedcba9876543210";
        let parsed = AvatarId::parse(mixed).unwrap();
        assert_eq!(parsed.as_u128(), 0x0123456789abcdeffedcba9876543210);
        assert_eq!(parsed.to_string(), mixed);
        let zero = "0".repeat(32);
        assert_eq!(AvatarId::parse(&zero).map(|i| i.to_string()), Ok(zero));
        for bad in [
            "",
            "ABABABABABABABABABABABABABABABAB",
            "abababababababababababababababa",
            "abababababababababababababababab0",
            "+bababababababababababababababab",
            "gbababababababababababababababab",
        ] {
            assert!(AvatarId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_round_trip_through_labels() {
        for size in AvatarSize::ALL {
            assert_eq!(AvatarSize::from_label(size.label()), Some(size));
        }
        assert_eq!(AvatarSize::from_label("640"), None);
    }
}
