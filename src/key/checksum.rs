//! The checksum of a key: CRC32 in six base62 digits, and the alphanumeric check of a
//! key's body.

/// Length of the checksum part of a key, in characters.
pub const CHECKSUM_LEN: usize = 6;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The CRC32 of `bytes`. `crc32fast::hash` detects the CPU's features on every call; a
/// hasher made once and cloned detects them once.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    static PROTOTYPE: std::sync::OnceLock<crc32fast::Hasher> = std::sync::OnceLock::new();
    let mut hasher = PROTOTYPE.get_or_init(crc32fast::Hasher::new).clone();
    hasher.update(bytes);
    hasher.finalize()
}

/// Whether every byte is an ASCII letter or digit.
///
/// Branch-free and without early exit, so the compiler vectorizes it: this runs on every
/// request that carries a key.
pub(crate) fn all_alphanumeric(bytes: &[u8]) -> bool {
    let mut outside = 0u8;
    for &b in bytes {
        let digit = b.wrapping_sub(b'0') < 10;
        let letter = (b | 0x20).wrapping_sub(b'a') < 26;
        outside |= u8::from(!(digit | letter));
    }
    outside == 0
}

/// The value of each base62 digit, or `0xFF` for bytes that are not one.
const BASE62_VALUE: [u8; 256] = {
    let mut table = [0xFF; 256];
    let mut digit = 0;
    while digit < 62 {
        table[BASE62[digit] as usize] = digit as u8;
        digit += 1;
    }
    table
};

/// Reads six base62 digits back into a CRC32; `None` when they are not base62 or name a
/// value above `u32::MAX` (no encoder writes those).
pub(crate) fn decode_checksum(digits: &[u8]) -> Option<u32> {
    let mut value: u64 = 0;
    for &digit in digits {
        let digit = BASE62_VALUE[usize::from(digit)];
        if digit == 0xFF {
            return None;
        }
        value = value * 62 + u64::from(digit);
    }
    u32::try_from(value).ok()
}

/// Writes a CRC32 as six base62 digits.
pub(crate) fn encode_checksum(mut crc: u32) -> [u8; CHECKSUM_LEN] {
    // 62^6 > 2^32, so six base62 digits hold every CRC32 value.
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_the_standard_crc32() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"kg_key"), crc32fast::hash(b"kg_key"));
    }

    #[test]
    fn checksum_encoding_covers_the_full_u32_range() {
        assert_eq!(&encode_checksum(0), b"000000");
        let max = encode_checksum(u32::MAX);
        assert_eq!(&max, b"4gfFC3");
    }

    #[test]
    fn checksum_decoding_inverts_encoding() {
        for crc in [0, 1, 61, 62, 0xDEAD_BEEF, u32::MAX] {
            assert_eq!(decode_checksum(&encode_checksum(crc)), Some(crc));
        }
        assert_eq!(decode_checksum(b"zzzzzz"), None, "above u32::MAX");
        assert_eq!(decode_checksum(b"00000-"), None);
    }

    #[test]
    fn alphanumeric_check_rejects_every_other_byte() {
        for b in 0..=255u8 {
            assert_eq!(
                all_alphanumeric(&[b'a', b, b'0']),
                b.is_ascii_alphanumeric(),
                "{b}"
            );
        }
    }
}
